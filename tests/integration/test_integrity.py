"""Stored ciphertext is bound to its tenant, record and field: moved, swapped or tampered with in
the database, it fails authentication and the service answers a problem, never data."""

from __future__ import annotations

import base64
import json
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import TenantKeys, customer
from tests.integration.problems import assert_problem

PLAINTEXTS = (
    "jane.doe",
    "example.com",
    "4111",
    "123-45-6789",
    "6789",
    "415 555",
    "DE89",
    "Jane Q",
    "prefers email",
    "1984-03-09",
)


async def create(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], subject: str, n: int
) -> str:
    response = await client.post(
        url, json={"subject_id": subject, "data": customer(n)}, headers=headers
    )
    assert response.status_code == 201, response.text
    record_id: str = response.json()["id"]
    return record_id


async def stored(db: asyncpg.Pool, record_id: str) -> tuple[dict[str, Any], str]:
    row = await db.fetchrow(
        "SELECT data::text AS data, subject_ct FROM records WHERE id = $1::uuid", record_id
    )
    assert row is not None
    return json.loads(row["data"]), row["subject_ct"]


async def set_field(db: asyncpg.Pool, record_id: str, field: str, value: object) -> None:
    status = await db.execute(
        "UPDATE records SET data = jsonb_set(data, ARRAY[$2::text], $3::text::jsonb) "
        "WHERE id = $1::uuid",
        record_id,
        field,
        json.dumps(value),
    )
    assert status == "UPDATE 1"


def flip(envelope: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(envelope + "=" * (-len(envelope) % 4)))
    raw[position] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


async def assert_refused(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    """Reading (masked and revealed) and listing answer integrity-failure and no plaintext."""
    reveal = {**headers, "X-Purpose": "support"}
    for response in (
        await client.get(url, headers=headers),
        await client.get(url, params={"reveal": "email,card,ssn,phone,name"}, headers=reveal),
    ):
        body = assert_problem(response, 500, "integrity-failure")
        assert "data" not in body
        for text in PLAINTEXTS:
            assert text not in response.text
        assert "•" not in response.text  # not even masked values


@pytest.fixture
async def setting(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The records URL, headers, and three records: a and b of one subject, c of another."""
    headers = await tenant.headers("records:read", "records:write", "records:reveal")
    ids = {
        "a": await create(client, customers, headers, "subject-1", 0),
        "b": await create(client, customers, headers, "subject-1", 1),
        "c": await create(client, customers, headers, "subject-2", 2),
    }
    return customers, headers, ids


async def test_untouched_records_read_back(
    client: httpx.AsyncClient, setting: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    url, headers, ids = setting
    for record_id in ids.values():
        assert (await client.get(f"{url}/{record_id}", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("source", "source_field", "target_field"),
    [
        pytest.param("a", "email", "phone", id="other-field-same-record"),
        pytest.param("a", "card", "ssn", id="card-into-ssn-same-record"),
        pytest.param("b", "email", "email", id="same-field-other-record-same-subject"),
        pytest.param("c", "email", "email", id="same-field-other-record-other-subject"),
        pytest.param("b", "notes", "birthday", id="other-field-other-record-same-subject"),
    ],
)
async def test_moved_ciphertext_fails(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    setting: tuple[str, dict[str, str], dict[str, str]],
    source: str,
    source_field: str,
    target_field: str,
) -> None:
    url, headers, ids = setting
    data, _ = await stored(db, ids[source])
    await set_field(db, ids["a"], target_field, data[source_field])
    await assert_refused(client, f"{url}/{ids['a']}", headers)
    # Listing opens the record too: it must not answer the page either.
    assert_problem(await client.get(url, headers=headers), 500, "integrity-failure")


@pytest.mark.parametrize(
    "position",
    [
        pytest.param(1, id="header-key-version"),
        pytest.param(7, id="nonce"),
        pytest.param(20, id="ciphertext"),
        pytest.param(-1, id="tag"),
    ],
)
async def test_tampered_byte_fails(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    setting: tuple[str, dict[str, str], dict[str, str]],
    position: int,
) -> None:
    url, headers, ids = setting
    data, _ = await stored(db, ids["a"])
    await set_field(db, ids["a"], "email", flip(data["email"], position))
    await assert_refused(client, f"{url}/{ids['a']}", headers)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("jane.doe0@example.com", id="plaintext-string"),
        pytest.param("", id="empty-string"),
        pytest.param("AAAA", id="short-base64"),
        pytest.param("not base64!", id="not-base64"),
        pytest.param(42, id="number"),
        pytest.param({"email": "jane.doe0@example.com"}, id="object"),
    ],
)
async def test_non_envelope_in_sensitive_field_fails(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    setting: tuple[str, dict[str, str], dict[str, str]],
    value: object,
) -> None:
    url, headers, ids = setting
    await set_field(db, ids["a"], "email", value)
    response = await client.get(f"{url}/{ids['a']}", headers=headers)
    assert_problem(response, 500, "integrity-failure")
    assert "jane.doe0" not in response.text


@pytest.mark.parametrize(
    "other",
    [pytest.param("b", id="same-subject"), pytest.param("c", id="other-subject")],
)
async def test_swapped_subject_ct_fails(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    setting: tuple[str, dict[str, str], dict[str, str]],
    other: str,
) -> None:
    url, headers, ids = setting
    status = await db.execute(
        "UPDATE records r SET subject_ct = o.subject_ct FROM records o "
        "WHERE r.id = $1::uuid AND o.id = $2::uuid",
        ids["a"],
        ids[other],
    )
    assert status == "UPDATE 1"
    response = await client.get(f"{url}/{ids['a']}", headers=headers)
    assert_problem(response, 500, "integrity-failure")
    assert "subject-" not in response.text


async def test_tampered_subject_ct_fails(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    setting: tuple[str, dict[str, str], dict[str, str]],
) -> None:
    url, headers, ids = setting
    _, subject_ct = await stored(db, ids["a"])
    await db.execute(
        "UPDATE records SET subject_ct = $2 WHERE id = $1::uuid", ids["a"], flip(subject_ct, 25)
    )
    response = await client.get(f"{url}/{ids['a']}", headers=headers)
    assert_problem(response, 500, "integrity-failure")
    assert "subject-1" not in response.text
