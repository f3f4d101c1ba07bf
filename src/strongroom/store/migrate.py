"""Versioned SQL migrations, applied in order, each in its own transaction, under an advisory lock.

Several replicas may start at once: the first takes the lock and migrates, the others wait on the
lock and then find nothing left to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Arbitrary constant shared by every Strongroom process: the key of the migration advisory lock.
_LOCK_KEY = 0x5374726F6E67  # "Strong"

SCOPES = ("data", "keystore")


@dataclass(frozen=True, slots=True)
class Migration:
    scope: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(scope: str) -> list[Migration]:
    """Read the packaged ``migrations/<scope>/NNNN_name.sql`` files in version order."""
    if scope not in SCOPES:
        raise ValueError(f"unknown migration scope {scope!r}")
    folder = resources.files("strongroom.store").joinpath("migrations", scope)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        found.append(Migration(scope, int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {scope}: {versions}")
    return found


async def migrate(connection: asyncpg.Connection, scope: str) -> list[int]:
    """Apply the pending migrations of ``scope``; returns the versions applied now."""
    applied_now: list[int] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS strongroom_migrations (
                scope       text NOT NULL,
                version     integer NOT NULL,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (scope, version)
            )
            """
        )
        rows = await connection.fetch(
            "SELECT version, checksum FROM strongroom_migrations WHERE scope = $1", scope
        )
        done = {row["version"]: row["checksum"] for row in rows}
        for migration in load_migrations(scope):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {scope}/{migration.version:04d} was changed after it was "
                        "applied; add a new migration instead"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO strongroom_migrations (scope, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)",
                    scope,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.version)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def migrate_all(database_dsn: str, keystore_dsn: str) -> dict[str, list[int]]:
    """Migrate the data database and the key store (which may be the same database)."""
    result: dict[str, list[int]] = {}
    for scope, dsn in (("data", database_dsn), ("keystore", keystore_dsn)):
        connection = await asyncpg.connect(dsn)
        try:
            result[scope] = await migrate(connection, scope)
        finally:
            await connection.close()
    return result
