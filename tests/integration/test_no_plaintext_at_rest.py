"""Nothing a client sends as sensitive is readable in either database: not the value, not a
normalised form of it, not its mask and not the subject id."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import re
import secrets
import shutil
from pathlib import Path

import asyncpg
import httpx

from strongroom.crypto.envelope import ENVELOPE_FORMAT, ENVELOPE_OVERHEAD
from strongroom.domain.schema import iban_valid, luhn_valid
from tests.conftest import Databases, TenantKeys

ENVELOPE_TEXT = re.compile(r"[A-Za-z0-9_-]+")
SENSITIVE = ("email", "card", "ssn", "phone", "iban", "name", "notes", "birthday")


def luhn_card(prefix: str) -> str:
    """A Luhn-valid card number starting with ``prefix`` (15 digits)."""
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError("unreachable: one check digit always fits")


def iban_for(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    remainder = int("".join(str(int(c, 36)) for c in rearranged)) % 97
    iban = f"{country}{98 - remainder:02d}{bban}"
    assert iban_valid(iban)
    return iban


def distinctive_values() -> tuple[str, dict[str, str], set[str]]:
    """A subject id, record data and every plaintext form that must never be at rest."""
    token = secrets.token_hex(5)
    digits = "".join(str(secrets.randbelow(10)) for _ in range(10))
    card = luhn_card("45" + digits + "973")
    card_spaced = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    iban = iban_for("GB", "QZXY" + "".join(str(secrets.randbelow(10)) for _ in range(14)))
    iban_spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    data = {
        "email": f"Quokka.Zebra.{token}@Plaintext-Probe.example",
        "card": card_spaced,
        "ssn": "387-62-1945",
        "phone": "+44 20 7946 0958",
        "iban": iban_spaced,
        "name": f"Quillon Zarathustra Vexley{token}",
        "notes": f"marmalade heron {token} whispers",
        "birthday": "1977-11-23",
        "plan": f"plan-{token}",  # not sensitive: stored as given (the control)
        "score": 7,
        "vip": False,
    }
    subject_id = f"subject-{token}-xylophone"
    forms = {
        data["email"],
        data["email"].lower(),
        card_spaced,
        card,
        "387-62-1945",
        "387621945",
        "+44 20 7946 0958",
        "442079460958",
        "+442079460958",
        iban_spaced,
        iban,
        data["name"],
        data["name"].casefold(),
        data["notes"],
        "1977-11-23",
        subject_id,
    }
    return subject_id, data, forms


async def dump_tables(pool: asyncpg.Pool) -> dict[str, str]:
    """Every row of every table in schema public, as PostgreSQL's text form, per table."""
    async with pool.acquire() as connection:
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        dumps: dict[str, str] = {}
        for row in tables:
            name = row["table_name"]
            ident = '"' + name.replace('"', '""') + '"'
            rows = await connection.fetch(f"SELECT t::text AS row FROM public.{ident} t")
            dumps[name] = "\n".join(r["row"] for r in rows)
    return dumps


def pg_dump_candidates() -> list[str]:
    found = [shutil.which("pg_dump")]
    spec = importlib.util.find_spec("pgserver")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "pginstall" / "bin" / "pg_dump"
        found.append(str(bundled) if bundled.exists() else None)
    return [path for path in found if path]


async def run_pg_dump(url: str, server_major: int) -> str | None:
    """Plain-SQL ``pg_dump`` of the database; None when no pg_dump able to read it is around."""
    for binary in pg_dump_candidates():
        version = await _output(binary, "--version")
        match = re.search(r"(\d+)\.", version)
        if match is None or int(match.group(1)) < server_major:
            continue  # an older pg_dump refuses a newer server
        return await _output(binary, "--no-owner", "--no-privileges", "--dbname", url)
    return None


async def _output(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")
    return out.decode()


async def test_no_sensitive_value_is_stored_in_any_readable_form(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    customers: str,
    databases: Databases,
    db: asyncpg.Pool,
    keys_db: asyncpg.Pool,
) -> None:
    headers = await tenant.headers("records:read", "records:write")
    subject_id, data, forbidden = distinctive_values()
    created = await client.post(
        customers, json={"subject_id": subject_id, "data": data}, headers=headers
    )
    assert created.status_code == 201, created.text
    record = created.json()
    for field in SENSITIVE:
        masked = record["data"][field]
        assert masked != data[field]
        forbidden.add(masked)
    # Reading and searching must not leave anything behind either (caches, audit rows).
    assert (await client.get(f"{customers}/{record['id']}", headers=headers)).status_code == 200
    found = await client.get(customers, params={"email": data["email"]}, headers=headers)
    assert [item["id"] for item in found.json()["items"]] == [record["id"]]

    data_dump = await dump_tables(db)
    keys_dump = await dump_tables(keys_db)
    # The dumps really hold this record (so an empty dump cannot pass).
    assert record["id"] in data_dump["records"]
    assert record["id"] in data_dump["audit_events"]
    assert {"subject_keys", "tenant_keys"} <= keys_dump.keys()
    assert tenant.id in keys_dump["subject_keys"]

    texts = {f"data/{name}": text for name, text in data_dump.items()}
    texts |= {f"keys/{name}": text for name, text in keys_dump.items()}
    server_major = int(await db.fetchval("SHOW server_version_num")) // 10000
    for label, url in (("data", databases.data_url), ("keys", databases.keys_url)):
        dumped = await run_pg_dump(url, server_major)
        if dumped is not None:
            assert "COPY public.records" in dumped or label == "keys"
            texts[f"pg_dump/{label}"] = dumped

    # The control: a non-sensitive value is found wherever the rows are, so the search works.
    for where, text in texts.items():
        if where in ("data/records", "pg_dump/data"):
            assert data["plan"] in text, where

    leaks = [
        (where, value)
        for where, text in texts.items()
        for value in sorted(forbidden)
        if value in text
    ]
    assert not leaks, leaks


async def test_sensitive_fields_are_envelopes_unique_per_record(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    headers = await tenant.headers("records:write")
    subject_id, data, _ = distinctive_values()
    ids = []
    for _ in range(2):
        created = await client.post(
            customers, json={"subject_id": subject_id, "data": data}, headers=headers
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    rows = await db.fetch(
        "SELECT id::text AS id, data, subject_ct FROM records WHERE id = ANY($1::uuid[])", ids
    )
    assert len(rows) == 2
    stored = [json.loads(row["data"]) for row in rows]
    for field in SENSITIVE:
        first, second = stored[0][field], stored[1][field]
        for text in (first, second):
            assert isinstance(text, str)
            assert ENVELOPE_TEXT.fullmatch(text), text
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            assert raw[0] == ENVELOPE_FORMAT
            assert len(raw) >= ENVELOPE_OVERHEAD + 1
        assert first != second, field  # a fresh nonce per value: equal values do not show
    # Non-sensitive fields stay plain, so the check above is not vacuous.
    assert stored[0]["plan"] == data["plan"]
    assert stored[0]["score"] == 7
    subjects = [row["subject_ct"] for row in rows]
    assert all(ENVELOPE_TEXT.fullmatch(text) for text in subjects)
    assert subjects[0] != subjects[1]
