"""One asyncpg pool per process and database, created in the application lifespan."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from strongroom.settings import Settings


async def _init_connection(connection: asyncpg.Connection) -> None:
    # JSON columns round-trip through orjson: faster than the stdlib and strict about input.
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (a round trip per use of the pool).

    Pooled connections never keep session state: settings change with SET LOCAL inside a
    transaction, cursors live inside transactions, and advisory locks and LISTEN run on
    connections of their own. asyncpg still rolls back a transaction left open.
    """


async def create_pool(dsn: str, settings: Settings, *, application: str) -> asyncpg.Pool:
    """Open a pool with timeouts on connect, commands and statements."""
    server_settings: dict[str, Any] = {
        "application_name": application,
        "statement_timeout": str(settings.statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(max(settings.statement_timeout_ms * 2, 10_000)),
    }
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.db_timeout,
        command_timeout=settings.db_timeout,
        init=_init_connection,
        reset=_keep_session,
        server_settings=server_settings,
    )
    assert pool is not None
    return pool


# Whether the server vacuums and analyzes tables by itself (autovacuum needs track_counts).
AUTOVACUUM = (
    "SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on'"
)


async def autovacuum_enabled(pool: asyncpg.Pool) -> bool | None:
    """Whether the server vacuums and analyzes tables by itself (None if it would not say).

    Without it, tables are never analyzed: the planner keeps the row counts of an empty table
    and picks plans that read a tenant's whole audit trail, growing slower as the trail grows.
    """
    try:
        return bool(await pool.fetchval(AUTOVACUUM))
    except asyncpg.PostgresError:
        return None
