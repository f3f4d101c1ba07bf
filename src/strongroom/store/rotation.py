"""Master key rotation state in the key store: rotations, re-wrapping batches, retired versions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from strongroom.crypto import WrappedKey, subject_key_aad, tenant_root_key_aad
from strongroom.domain.errors import Conflict

Rewrap = Callable[[WrappedKey, bytes], Awaitable[WrappedKey]]


@dataclass(frozen=True, slots=True)
class Rotation:
    id: int
    target_version: int
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    rewrapped: int


_ROTATION = "id, target_version, requested_by, started_at, finished_at, rewrapped"


class RotationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def start(self, target_version: int, requested_by: str) -> Rotation:
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO kek_rotations (target_version, requested_by) VALUES ($1, $2) "
                f"RETURNING {_ROTATION}",
                target_version,
                requested_by,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("a master key rotation is already running") from None
        assert row is not None
        return _rotation(row)

    async def cancel(self, rotation_id: int) -> None:
        await self._pool.execute("DELETE FROM kek_rotations WHERE id = $1", rotation_id)

    async def running(self) -> Rotation | None:
        row = await self._pool.fetchrow(
            f"SELECT {_ROTATION} FROM kek_rotations WHERE finished_at IS NULL"
        )
        return _rotation(row) if row else None

    async def latest(self) -> Rotation | None:
        row = await self._pool.fetchrow(
            f"SELECT {_ROTATION} FROM kek_rotations ORDER BY id DESC LIMIT 1"
        )
        return _rotation(row) if row else None

    async def finish(self, rotation_id: int) -> bool:
        status = await self._pool.execute(
            "UPDATE kek_rotations SET finished_at = now() WHERE id = $1 AND finished_at IS NULL",
            rotation_id,
        )
        return status.endswith(" 1")

    async def rewrap_batch(self, rotation: Rotation, rewrap: Rewrap, limit: int) -> int:
        """Re-wrap up to ``limit`` keys not yet at the target version; 0 when none are left.

        Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several replicas share the work
        without waiting on each other, and a crash simply leaves the rows for the next batch.
        """
        target = rotation.target_version
        done = 0
        async with self._pool.acquire() as connection, connection.transaction():
            tenants = await connection.fetch(
                "SELECT tenant_id, kek_version, wrapped FROM tenant_keys WHERE kek_version <> $1 "
                "LIMIT $2 FOR UPDATE SKIP LOCKED",
                target,
                limit,
            )
            for row in tenants:
                aad = tenant_root_key_aad(str(row["tenant_id"]))
                new = await rewrap(WrappedKey(row["kek_version"], bytes(row["wrapped"])), aad)
                await connection.execute(
                    "UPDATE tenant_keys SET kek_version = $2, wrapped = $3 WHERE tenant_id = $1",
                    row["tenant_id"],
                    new.kek_version,
                    new.blob,
                )
                done += 1
            subjects = await connection.fetch(
                "SELECT tenant_id, subject_ref, dek_version, kek_version, wrapped "
                "FROM subject_keys WHERE kek_version <> $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                target,
                max(limit - done, 0),
            )
            for row in subjects:
                aad = subject_key_aad(str(row["tenant_id"]), bytes(row["subject_ref"]))
                new = await rewrap(WrappedKey(row["kek_version"], bytes(row["wrapped"])), aad)
                await connection.execute(
                    "UPDATE subject_keys SET kek_version = $4, wrapped = $5 "
                    "WHERE tenant_id = $1 AND subject_ref = $2 AND dek_version = $3",
                    row["tenant_id"],
                    row["subject_ref"],
                    row["dek_version"],
                    new.kek_version,
                    new.blob,
                )
                done += 1
            if done:
                await connection.execute(
                    "UPDATE kek_rotations SET rewrapped = rewrapped + $2 WHERE id = $1",
                    rotation.id,
                    done,
                )
        return done

    async def counts_by_version(self) -> dict[int, int]:
        rows = await self._pool.fetch(
            "SELECT kek_version, count(*) AS n FROM ("
            "  SELECT kek_version FROM subject_keys UNION ALL SELECT kek_version FROM tenant_keys"
            ") k GROUP BY kek_version ORDER BY kek_version"
        )
        return {row["kek_version"]: row["n"] for row in rows}

    async def retired(self) -> frozenset[int]:
        rows = await self._pool.fetch("SELECT version FROM kek_retired")
        return frozenset(row["version"] for row in rows)

    async def retire(self, version: int, retired_by: str) -> None:
        """Mark ``version`` retired; refused while any key is still wrapped by it."""
        async with self._pool.acquire() as connection, connection.transaction():
            # Lock both key tables against new wraps by this version while checking.
            await connection.execute("LOCK TABLE subject_keys, tenant_keys IN SHARE MODE")
            used = await connection.fetchval(
                "SELECT (SELECT count(*) FROM subject_keys WHERE kek_version = $1) + "
                "(SELECT count(*) FROM tenant_keys WHERE kek_version = $1)",
                version,
            )
            if used:
                raise Conflict(
                    f"master key version {version} still wraps {used} keys; "
                    "let the re-wrap finish first (strongroom keys status)"
                )
            await connection.execute(
                "INSERT INTO kek_retired (version, retired_by) VALUES ($1, $2) "
                "ON CONFLICT (version) DO NOTHING",
                version,
                retired_by,
            )


def _rotation(row: asyncpg.Record) -> Rotation:
    return Rotation(
        id=row["id"],
        target_version=row["target_version"],
        requested_by=row["requested_by"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        rewrapped=row["rewrapped"],
    )
