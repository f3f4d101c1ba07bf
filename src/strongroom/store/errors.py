"""Which database failures mean "the database is unavailable" (answer 503 and retry later)
rather than a bug. Kept here so that nothing outside store/ needs to know asyncpg's errors."""

from __future__ import annotations

import asyncpg

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # connection lost, refused, server shutting down
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # e.g. the pool is closing, or a connection was lost mid-query
    # A connection whose command was interrupted when the server died mid-operation.
    asyncpg.exceptions._base.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.QueryCanceledError,  # statement_timeout: the database is overloaded
    ConnectionError,
    TimeoutError,  # pool acquire or command timeout
    OSError,
)


def database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, _UNAVAILABLE)
