"""GET /v1/subjects/{id}/export: every record in plaintext, the schemas and the access history,
in a bundle whose manifest is signed by the service key."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import asyncpg
import httpx
import orjson

from strongroom.audit.signing import trusted_keys
from strongroom.bundle import BUNDLE_FORMAT, SECTIONS, section_hash, verify_bundle
from strongroom.crypto import parse_master_keys
from tests.conftest import CUSTOMERS, Databases, Servers, TenantKeys
from tests.integration.subjects.conftest import ORDERS, World, quote, strongroom


def service_keys(master_key: str) -> dict[str, bytes]:
    return trusted_keys(parse_master_keys(master_key))


async def test_export_holds_everything_in_plaintext_and_verifies(
    world: World,
    db: asyncpg.Pool,
    databases: Databases,
    servers: Servers,
    master_key: str,
    tmp_path: Path,
) -> None:
    subject = await world.subject(1, customers=2, orders=2)
    other = await world.subject(2)
    revealed = await world.reveal(subject.customers[0], purpose="fraud_investigation")
    assert revealed.status_code == 200, revealed.text

    response = await world.export(subject.id)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    # A bundle of personal data must not be cached on the way, and says so once.
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    raw = response.content
    # The manifest comes last, so it can carry hashes of what was streamed before it.
    assert raw.startswith(b'{"records":[')
    assert raw.index(b'],"manifest":{') > raw.index(b',"access_history":[')
    bundle = orjson.loads(raw)
    assert set(bundle) == {*SECTIONS, "manifest"}

    # Every record of the subject, in both collections, in plaintext; nothing of the other one.
    records = {r["id"]: r for r in bundle["records"]}
    assert set(records) == set(subject.records)
    for record_id in subject.customers:
        record = records[record_id]
        assert record["collection"] == "customers"
        assert record["subject_id"] == subject.id
        assert record["data"]["email"] == subject.email
        assert record["data"]["ssn"] == "123-45-6789"
        assert record["data"]["card"] == "4111111111111111"
        assert record["data"]["name"] == "Jane Q Doe1"
        assert record["data"]["notes"].startswith("note ")
        assert record["data"]["birthday"] == "1984-03-09"
        assert record["data"]["plan"] == "gold"
    orders = [records[i] for i in subject.orders]
    assert {o["data"]["address"] for o in orders} == {
        "0 Quiet Lane, Springfield",
        "1 Quiet Lane, Springfield",
    }
    assert {o["data"]["amount"] for o in orders} == {12.5, 13.5}
    assert other.id not in raw.decode()
    assert not set(other.records) & set(records)

    # The schemas of both collections.
    assert set(bundle["schemas"]) == {"customers", "orders"}
    assert set(bundle["schemas"]["customers"]["fields"]) == set(CUSTOMERS["fields"])
    assert set(bundle["schemas"]["orders"]["fields"]) == set(ORDERS["fields"])

    # The access history: the creations, the reveal with its purpose, the export itself.
    history = bundle["access_history"]
    actions = [e["action"] for e in history]
    assert actions.count("record.create") == 4
    reveal = [e for e in history if e["action"] == "record.reveal"]
    assert len(reveal) == 1
    assert reveal[0]["purpose"] == "fraud_investigation"
    assert reveal[0]["fields"] == ["email", "ssn"]
    assert reveal[0]["resource"] == f"collections/customers/records/{subject.customers[0]}"
    assert reveal[0]["actor"]
    assert reveal[0]["outcome"] == "success"
    assert reveal[0]["occurred_at"]
    assert actions[-1] == "subject.export"

    # The manifest.
    manifest = bundle["manifest"]
    assert manifest["format"] == BUNDLE_FORMAT
    assert manifest["tenant_id"] == world.tenant.id
    subject_ref = bytes.fromhex(manifest["subject"])
    assert subject.id not in orjson.dumps(manifest).decode()
    assert manifest["counts"] == {"records": 4, "schemas": 2, "access_history": len(history)}
    for name in SECTIONS:
        assert manifest["sections"][name] == section_hash(bundle[name])
    assert verify_bundle(raw, service_keys(master_key)) == []

    # The export is in the audit trail, pseudonymised.
    exported = await db.fetch(
        "SELECT subject_ref, purpose FROM audit_events WHERE tenant_id = $1::uuid "
        "AND action = 'subject.export'",
        world.tenant.id,
    )
    assert [(bytes(r["subject_ref"]), r["purpose"]) for r in exported] == [
        (subject_ref, "data_subject_request")
    ]

    # `strongroom verify-bundle` with the published public key, and with the configured one.
    home = tmp_path / "home"
    published = strongroom(databases, servers, master_key, "audit", "public-key", home=home)
    assert published.returncode == 0, published.stderr
    pem = tmp_path / "service.pem"
    pem.write_text(published.stdout)
    saved = tmp_path / "bundle.json"
    saved.write_bytes(raw)
    checked = strongroom(
        databases, servers, None, "verify-bundle", str(saved), "--public-key", str(pem), home=home
    )
    assert (checked.returncode, checked.stdout) == (0, "valid\n"), checked.stderr
    default = strongroom(databases, servers, master_key, "verify-bundle", str(saved), home=home)
    assert (default.returncode, default.stdout) == (0, "valid\n"), default.stderr

    # Tampering with the records, the history or the manifest is caught.
    tamperings = {
        "records": raw.replace(b"Quiet Lane", b"Quiet Lans", 1),
        "access_history": raw.replace(b'"fraud_investigation"', b'"support_____________"', 1),
        "manifest": raw.replace(b'"generated_at":"2', b'"generated_at":"3', 1),
    }
    for where, forged in tamperings.items():
        assert forged != raw
        path = tmp_path / f"forged-{where}.json"
        path.write_bytes(forged)
        result = strongroom(
            databases,
            servers,
            None,
            "verify-bundle",
            str(path),
            "--public-key",
            str(pem),
            home=home,
        )
        assert result.returncode == 1, where
        assert "invalid bundle" in result.stderr
        assert where in result.stderr, result.stderr
        assert result.stdout == ""

    # Another service key does not vouch for it.
    other_keys = service_keys(base64.b64encode(secrets.token_bytes(32)).decode())
    assert any("not trusted" in p for p in verify_bundle(raw, other_keys))


async def test_every_changed_byte_is_caught(world: World, master_key: str) -> None:
    subject = await world.subject(3, customers=1, orders=1)
    response = await world.export(subject.id)
    assert response.status_code == 200
    raw = response.content
    keys = service_keys(master_key)
    assert verify_bundle(raw, keys) == []
    undetected = []
    for position in range(len(raw)):
        forged = bytearray(raw)
        forged[position] ^= 0x01
        if not verify_bundle(bytes(forged), keys):
            undetected.append(position)
    assert undetected == [], [raw[p - 10 : p + 10] for p in undetected]
    assert verify_bundle(raw + b"x", keys)
    assert verify_bundle(raw[:-1], keys)


async def test_large_subject_streams_in_chunks(world: World, master_key: str) -> None:
    subject = await world.subject(4, customers=150, orders=0)
    async with world.client.stream(
        "GET",
        f"/v1/subjects/{quote(subject.id)}/export",
        headers=await world.tenant.headers("subjects:export"),
    ) as response:
        assert response.status_code == 200
        chunks = [chunk async for chunk in response.aiter_raw()]
        # Streamed: the length is not known up front (the test transport buffers the chunks).
        assert "content-length" not in response.headers
    raw = b"".join(chunks)
    bundle = orjson.loads(raw)
    assert len(bundle["records"]) == 150
    assert bundle["manifest"]["counts"]["records"] == 150
    assert verify_bundle(raw, service_keys(master_key)) == []


async def test_unknown_subject_and_bad_ids(world: World, db: asyncpg.Pool) -> None:
    before = await db.fetchval("SELECT count(*) FROM audit_events WHERE action = 'subject.export'")
    assert (await world.export("nobody-" + "x" * 8)).status_code == 404
    for bad in ("x" * 300, "bad\x01id", "tab\tid", " padded", "nul\x00"):
        response = await world.export(bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (
        await db.fetchval("SELECT count(*) FROM audit_events WHERE action = 'subject.export'")
        == before
    )


async def test_export_needs_its_scope(
    world: World, other_tenant: TenantKeys, client: httpx.AsyncClient
) -> None:
    subject = await world.subject(5, customers=1, orders=0)
    for scopes in (("records:read", "records:reveal"), ("subjects:erase",)):
        assert (await world.export(subject.id, *scopes)).status_code == 403
    assert (await world.export(subject.id, "admin")).status_code == 200
    # Another tenant does not see the subject at all.
    other = await other_tenant.headers("subjects:export")
    response = await client.get(f"/v1/subjects/{quote(subject.id)}/export", headers=other)
    assert response.status_code == 404


async def test_empty_subject_id(world: World) -> None:
    headers = await world.tenant.headers("subjects:export")
    blank = await world.client.get("/v1/subjects/%20/export", headers=headers)
    assert blank.status_code == 400, blank.text
    assert "invalid subject id" in blank.json()["detail"]
    # An empty path segment is no subject route at all (route values are never empty).
    empty = await world.client.get("/v1/subjects//export", headers=headers)
    assert empty.status_code == 404
    assert empty.headers["content-type"] == "application/problem+json"
