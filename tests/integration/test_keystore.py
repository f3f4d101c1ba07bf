"""The key store on the real key-store database: a subject's first key is created once, however
many writers race for it."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

from strongroom.crypto import WrappedKey
from strongroom.store.keystore import PgKeyStore
from tests.conftest import Databases


def wrapped(n: int) -> WrappedKey:
    return WrappedKey(1, bytes([n]) * 60)


async def test_a_new_subject_gets_the_offered_key_and_later_callers_the_stored_one(
    keys_db: asyncpg.Pool,
) -> None:
    store = PgKeyStore(keys_db)
    tenant, subject = str(uuid.uuid4()), os.urandom(32)
    assert await store.newest_or_add_subject_key(tenant, subject, wrapped(1)) == (1, wrapped(1))
    assert await store.newest_or_add_subject_key(tenant, subject, wrapped(2)) == (1, wrapped(1))
    # A rotation's newer version is the one answered from then on.
    await store.add_subject_key(tenant, subject, 2, wrapped(3))
    assert await store.newest_or_add_subject_key(tenant, subject, wrapped(4)) == (2, wrapped(3))


async def test_racing_first_writers_all_get_the_same_key(
    databases: Databases, keys_db: asyncpg.Pool
) -> None:
    pool = await asyncpg.create_pool(databases.keys_url, min_size=12, max_size=12)
    assert pool is not None
    store = PgKeyStore(pool)
    tenant, subject = str(uuid.uuid4()), os.urandom(32)
    try:
        answers = await asyncio.gather(
            *(store.newest_or_add_subject_key(tenant, subject, wrapped(n)) for n in range(12))
        )
    finally:
        await pool.close()
    assert len(set(answers)) == 1
    rows = await keys_db.fetchval(
        "SELECT count(*) FROM subject_keys WHERE tenant_id = $1 AND subject_ref = $2",
        uuid.UUID(tenant),
        subject,
    )
    assert rows == 1
