"""Tenants and API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from strongroom.domain.access import Principal
from strongroom.domain.errors import Conflict, NotFound
from strongroom.store.changes import InvalidatedCache


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    purposes: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    tenant: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


PrincipalCache = InvalidatedCache[str, "tuple[bytes, Principal] | None"]


class TenantRepository:
    def __init__(self, pool: asyncpg.Pool, cache: PrincipalCache | None = None) -> None:
        self._pool = pool
        self._cache = cache

    async def create(self, name: str, purposes: tuple[str, ...]) -> Tenant:
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO tenants (id, name, purposes) VALUES ($1, $2, $3) "
                "RETURNING id, name, purposes, created_at",
                uuid.uuid4(),
                name,
                list(purposes),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a tenant named {name!r} exists") from None
        except asyncpg.CheckViolationError:
            raise Conflict(
                "tenant names are 1-63 of a-z, 0-9, _ and - (letter or digit first)"
            ) from None
        assert row is not None
        return _tenant(row)

    async def get_by_name(self, name: str) -> Tenant | None:
        row = await self._pool.fetchrow(
            "SELECT id, name, purposes, created_at FROM tenants WHERE name = $1", name
        )
        return _tenant(row) if row else None

    async def all(self) -> list[Tenant]:
        rows = await self._pool.fetch(
            "SELECT id, name, purposes, created_at FROM tenants ORDER BY name"
        )
        return [_tenant(row) for row in rows]

    async def add_api_key(
        self, tenant: str, key_id: str, secret_hash: bytes, scopes: frozenset[str], name: str
    ) -> None:
        found = await self.get_by_name(tenant)
        if found is None:
            raise NotFound(f"no tenant named {tenant!r}")
        await self._pool.execute(
            "INSERT INTO api_keys (id, tenant_id, name, secret_hash, scopes) "
            "VALUES ($1, $2, $3, $4, $5)",
            key_id,
            uuid.UUID(found.id),
            name,
            secret_hash,
            sorted(scopes),
        )

    async def list_api_keys(self, tenant: str | None) -> list[ApiKeyInfo]:
        rows = await self._pool.fetch(
            "SELECT k.id, t.name AS tenant, k.name, k.scopes, k.created_at, k.revoked_at "
            "FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
            "WHERE $1::text IS NULL OR t.name = $1 ORDER BY t.name, k.created_at",
            tenant,
        )
        return [
            ApiKeyInfo(
                r["id"],
                r["tenant"],
                r["name"],
                tuple(r["scopes"]),
                r["created_at"],
                r["revoked_at"],
            )
            for r in rows
        ]

    async def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when no active key has that id."""
        status = await self._pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
        )
        return status.endswith(" 1")

    async def principal_for(self, key_id: str) -> tuple[bytes, Principal] | None:
        """The stored secret hash and principal of an active key (None if unknown or revoked).

        Cached per process while the change listener runs; a revocation evicts it everywhere.
        Unknown ids are not cached (they would let anyone fill the cache)."""
        if self._cache is None:
            return await self._load_principal(key_id)
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        generation = self._cache.generation
        found = await self._load_principal(key_id)
        if found is not None:
            self._cache.put(key_id, found, generation)
        return found

    async def _load_principal(self, key_id: str) -> tuple[bytes, Principal] | None:
        row = await self._pool.fetchrow(
            "SELECT k.secret_hash, k.scopes, t.id AS tenant_id, t.name AS tenant, t.purposes "
            "FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
            "WHERE k.id = $1 AND k.revoked_at IS NULL",
            key_id,
        )
        if row is None:
            return None
        principal = Principal(
            key_id=key_id,
            tenant_id=str(row["tenant_id"]),
            tenant_name=row["tenant"],
            scopes=frozenset(row["scopes"]),
            purposes=tuple(row["purposes"]),
        )
        return bytes(row["secret_hash"]), principal


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(str(row["id"]), row["name"], tuple(row["purposes"]), row["created_at"])
