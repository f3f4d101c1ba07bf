"""DELETE /v1/subjects/{id}: crypto-shredding with a signed receipt, refused under legal hold,
idempotent, and leaving the audit chain intact."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from strongroom.audit.sealer import seal_batch
from strongroom.audit.signing import trusted_keys
from strongroom.audit.verify import verify_chain
from strongroom.bundle import RECEIPT_FORMAT, verify_document
from strongroom.cache.key_evictions import CHANNEL, RedisKeyEvictions
from strongroom.crypto import parse_master_keys
from tests.conftest import Servers, TenantKeys
from tests.integration.subjects.conftest import Subject, World


async def state(
    db: asyncpg.Pool, keys_db: asyncpg.Pool, tenant_id: str, subject: Subject
) -> tuple[int, int, int]:
    """(records, blind-index entries, subject keys) of the subject."""
    ids = [uuid.UUID(i) for i in subject.records]
    records = await db.fetchval("SELECT count(*) FROM records WHERE id = ANY($1::uuid[])", ids)
    index = await db.fetchval(
        "SELECT count(*) FROM record_index WHERE record_id = ANY($1::uuid[])", ids
    )
    refs = await db.fetch(
        "SELECT DISTINCT subject_ref FROM records WHERE id = ANY($1::uuid[])", ids
    )
    keys = 0
    for row in refs:
        keys += await keys_db.fetchval(
            "SELECT count(*) FROM subject_keys WHERE tenant_id = $1::uuid AND subject_ref = $2",
            tenant_id,
            row["subject_ref"],
        )
    return records, index, keys


async def key_count(keys_db: asyncpg.Pool, tenant_id: str, subject_ref: bytes) -> int:
    count: int = await keys_db.fetchval(
        "SELECT count(*) FROM subject_keys WHERE tenant_id = $1::uuid AND subject_ref = $2",
        tenant_id,
        subject_ref,
    )
    return count


async def test_erasure_shreds_the_subject(
    world: World, db: asyncpg.Pool, keys_db: asyncpg.Pool, master_key: str
) -> None:
    subject = await world.subject(11, customers=2, orders=1)
    bystander = await world.subject(12, customers=1, orders=1)
    assert (await world.reveal(subject.customers[0])).status_code == 200
    # email, phone and plan are searchable in customers, email in orders.
    assert await state(db, keys_db, world.tenant.id, subject) == (3, 7, 1)

    response = await world.erase(subject.id)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["format"] == RECEIPT_FORMAT
    assert receipt["records_deleted"] == 3
    assert receipt["keys_destroyed"] == 1
    assert receipt["already_erased"] is False
    assert receipt["tenant_id"] == world.tenant.id
    assert subject.id not in response.text
    keys = trusted_keys(parse_master_keys(master_key))
    assert verify_document(receipt, keys) is None
    assert verify_document({**receipt, "records_deleted": 0}, keys) is not None
    subject_ref = bytes.fromhex(receipt["subject"])

    # Records, their blind-index entries and the data key are gone.
    ids = [uuid.UUID(i) for i in subject.records]
    assert await db.fetchval("SELECT count(*) FROM records WHERE id = ANY($1::uuid[])", ids) == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM record_index WHERE record_id = ANY($1::uuid[])", ids
        )
        == 0
    )
    assert (
        await db.fetchval("SELECT count(*) FROM records WHERE subject_ref = $1", subject_ref) == 0
    )
    assert await key_count(keys_db, world.tenant.id, subject_ref) == 0

    # Nothing finds or reads it any more; the bystander is untouched.
    reader = await world.tenant.headers("records:read")
    for collection in ("customers", "orders"):
        found = await world.client.get(
            f"/v1/collections/{collection}/records", params={"email": subject.email}, headers=reader
        )
        assert found.status_code == 200
        assert found.json()["items"] == []
        kept = await world.client.get(
            f"/v1/collections/{collection}/records",
            params={"email": bystander.email},
            headers=reader,
        )
        assert len(kept.json()["items"]) == 1
    for record_id in subject.customers:
        gone = await world.client.get(
            f"/v1/collections/customers/records/{record_id}", headers=reader
        )
        assert gone.status_code == 404
    assert await state(db, keys_db, world.tenant.id, bystander) == (2, 4, 1)
    revealed = await world.reveal(bystander.customers[0])
    assert revealed.json()["data"]["email"] == bystander.email
    assert (await world.export(subject.id)).status_code == 404
    assert (await world.export(bystander.id)).status_code == 200

    # The erasure is in the trail under the pseudonym, in the same transaction as the delete.
    event = await db.fetchrow(
        "SELECT id, subject_ref, outcome, resource FROM audit_events WHERE id = $1::uuid",
        receipt["audit_event_id"],
    )
    assert event is not None
    assert bytes(event["subject_ref"]) == subject_ref
    assert event["outcome"] == "success"
    assert event["resource"] == f"subjects/{subject_ref.hex()}"

    # The chain still verifies once everything is sealed.
    async with db.acquire() as connection:
        while await seal_batch(connection, 1000):
            pass
        report = await verify_chain(connection, keys)
    assert report.ok, report.to_json()

    # Erasing again: 200, already erased, nothing counted twice.
    again = await world.erase(subject.id)
    assert again.status_code == 200, again.text
    repeat = again.json()
    assert repeat["already_erased"] is True
    assert (repeat["records_deleted"], repeat["keys_destroyed"]) == (0, 0)
    assert repeat["subject"] == receipt["subject"]
    assert repeat["erased_at"] == receipt["erased_at"]
    assert verify_document(repeat, keys) is None


async def test_legal_hold_blocks_erasure(
    world: World, db: asyncpg.Pool, keys_db: asyncpg.Pool
) -> None:
    subject = await world.subject(21, customers=1, orders=1)
    admin = await world.tenant.headers("admin")
    placed = await world.client.post(
        "/v1/legal-holds",
        json={"reason": "litigation 2026-114", "subject_id": subject.id},
        headers=admin,
    )
    assert placed.status_code == 201
    hold = placed.json()
    before = await state(db, keys_db, world.tenant.id, subject)

    refused = await world.erase(subject.id)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    detail = refused.json()["detail"]
    assert hold["id"] in detail
    assert "litigation 2026-114" in detail
    assert await state(db, keys_db, world.tenant.id, subject) == before
    assert (await world.export(subject.id)).status_code == 200
    denied = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1::uuid AND action = 'subject.erase' "
        "AND outcome = 'denied'",
        world.tenant.id,
    )
    assert denied == 1

    # A hold on the whole tenant blocks too.
    assert (await world.client.delete(f"/v1/legal-holds/{hold['id']}", headers=admin)).is_success
    tenant_hold = await world.client.post(
        "/v1/legal-holds", json={"reason": "regulator inquiry"}, headers=admin
    )
    refused = await world.erase(subject.id)
    assert refused.status_code == 409
    assert tenant_hold.json()["id"] in refused.json()["detail"]
    assert await state(db, keys_db, world.tenant.id, subject) == before

    # Released: the erasure goes through.
    released = await world.client.delete(
        f"/v1/legal-holds/{tenant_hold.json()['id']}", headers=admin
    )
    assert released.is_success
    assert (await world.erase(subject.id)).status_code == 200
    assert await state(db, keys_db, world.tenant.id, subject) == (0, 0, 0)


async def test_refusals_change_nothing(
    world: World,
    db: asyncpg.Pool,
    keys_db: asyncpg.Pool,
    other_tenant: TenantKeys,
    client: httpx.AsyncClient,
) -> None:
    subject = await world.subject(31, customers=1, orders=1)
    before = await state(db, keys_db, world.tenant.id, subject)
    for scopes in (("records:write", "records:read"), ("subjects:export",)):
        response = await world.erase(subject.id, *scopes)
        assert response.status_code == 403, response.text
    unauthenticated = await client.delete(f"/v1/subjects/{subject.id}")
    assert unauthenticated.status_code == 401
    # Another tenant's erasure does not reach this tenant's subject.
    other = await other_tenant.headers("subjects:erase")
    assert (await client.delete(f"/v1/subjects/{subject.id}", headers=other)).status_code == 404
    assert (await world.erase("never-seen-" + uuid.uuid4().hex)).status_code == 404
    assert (await world.erase("")).status_code == 404  # `/v1/subjects/`: no subject route
    for bad in ("x" * 300, "ctrl\x07char", "nul\x00", "line\nbreak", " lead", " "):
        response = await world.erase(bad)
        assert response.status_code == 400, (bad, response.text)
        assert "invalid subject id" in response.json()["detail"]
    assert await state(db, keys_db, world.tenant.id, subject) == before
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1::uuid "
            "AND action = 'subject.erase'",
            world.tenant.id,
        )
        == 0
    )


async def test_interrupted_erasure_leaves_nothing_readable_and_a_retry_completes(
    world: World, db: asyncpg.Pool, keys_db: asyncpg.Pool
) -> None:
    subject = await world.subject(41, customers=2, orders=0)
    subject_ref = bytes(
        await db.fetchval(
            "SELECT subject_ref FROM records WHERE id = $1::uuid", subject.customers[0]
        )
    )
    # The first step ran (the key is destroyed), the process died before the second.
    await keys_db.execute(
        "DELETE FROM subject_keys WHERE tenant_id = $1::uuid AND subject_ref = $2",
        world.tenant.id,
        subject_ref,
    )
    # Export asks the key store itself (not the cache): the remains read as erased.
    exported = await world.export(subject.id)
    assert exported.status_code == 404
    assert "erased" in exported.json()["detail"]

    retried = await world.erase(subject.id)
    assert retried.status_code == 200, retried.text
    receipt = retried.json()
    assert (receipt["records_deleted"], receipt["keys_destroyed"]) == (2, 0)
    assert receipt["already_erased"] is False
    assert await state(db, keys_db, world.tenant.id, subject) == (0, 0, 0)
    reader = await world.tenant.headers("records:read")
    gone = await world.client.get(
        f"/v1/collections/customers/records/{subject.customers[0]}", headers=reader
    )
    assert gone.status_code == 404


async def test_erasure_is_published_to_other_processes(world: World, servers: Servers) -> None:
    subject = await world.subject(51, customers=1, orders=0)
    listener = aioredis.from_url(servers.redis_url)
    heard: list[tuple[str, bytes]] = []
    cleared: list[bool] = []
    evictions = RedisKeyEvictions(
        listener, lambda t, s: heard.append((t, s)), lambda: cleared.append(True), poll=0.1
    )
    await evictions.start()
    try:
        await asyncio.wait_for(evictions.subscribed.wait(), 5)
        assert cleared == [True]  # a fresh subscription starts from an empty cache
        response = await world.erase(subject.id)
        assert response.status_code == 200
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.1)
        assert heard == [(world.tenant.id, bytes.fromhex(response.json()["subject"]))]
        # Malformed messages are ignored; the listener keeps going.
        await listener.publish(CHANNEL, b"not json")
        await listener.publish(
            CHANNEL, orjson.dumps({"tenant_id": world.tenant.id, "subject_ref": "zz"})
        )
        await listener.publish(CHANNEL, orjson.dumps({"tenant_id": "t", "subject_ref": "00ff"}))
        for _ in range(50):
            if len(heard) == 2:
                break
            await asyncio.sleep(0.1)
        assert heard[1] == ("t", b"\x00\xff")
    finally:
        await evictions.stop()
        await listener.aclose()


@pytest.mark.parametrize("path", ["/v1/subjects/%09tab", "/v1/subjects/%20", "/v1/subjects/a%0Ab"])
async def test_erasure_with_empty_or_control_ids(world: World, path: str) -> None:
    headers = await world.tenant.headers("subjects:erase")
    response = await world.client.delete(path, headers=headers)
    assert response.status_code == 400, response.text
