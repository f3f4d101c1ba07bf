"""Records and their blind-index entries. Mutations write their audit event in the same
transaction as the change."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from strongroom.audit.events import COLUMNS, AuditEvent
from strongroom.audit.store import insert_event
from strongroom.domain.errors import NotFound, PreconditionFailed
from strongroom.domain.ports import IndexEntry, StoredRecord
from strongroom.domain.schema import CollectionSchema

_COLUMNS = (
    "id, tenant_id, collection_id, subject_ref, subject_ct, dek_version, data, version, seq, "
    "created_at, updated_at"
)


def _index_from_stored(fields: int, digests: int) -> str:
    """A record's blind-index entries, from the row a statement's ``stored`` CTE wrote; the
    parameters ``fields`` and ``digests`` are parallel arrays of field names and digests."""
    return f"""
        INSERT INTO record_index (record_id, collection_id, field, digest, seq)
        SELECT stored.id, stored.collection_id, entry.field, entry.digest, stored.seq
        FROM stored, unnest(${fields}::text[], ${digests}::bytea[]) AS entry (field, digest)
        ON CONFLICT (record_id, field) DO UPDATE SET digest = EXCLUDED.digest"""


def _event_from_stored(first: int) -> str:
    """A mutation's audit event, written only if the statement's ``stored`` CTE wrote a row;
    its values are the parameters from ``first`` on, in the order of ``COLUMNS``."""
    values = ", ".join(f"${n}" for n in range(first, first + len(COLUMNS)))
    return (
        f"INSERT INTO audit_events ({', '.join(COLUMNS)}) "
        f"SELECT {values} FROM stored ON CONFLICT (id) DO NOTHING"
    )


# The same columns qualified by the alias ``r``, for joins.
_R_COLUMNS = ", ".join("r." + column.strip() for column in _COLUMNS.split(","))


Reseal = Callable[[StoredRecord, CollectionSchema], tuple[dict[str, Any], str, int]]


class PgRecordRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(
        self, record: StoredRecord, index: Sequence[IndexEntry], event: AuditEvent
    ) -> StoredRecord:
        # One statement, so one round trip and its own transaction: the record, its index
        # entries and its audit event are written together or not at all.
        fields, digests = _index_arrays(index)
        row = await self._pool.fetchrow(
            f"""
            WITH stored AS (
                INSERT INTO records (id, tenant_id, collection_id, subject_ref, subject_ct,
                                     dek_version, data, version, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                RETURNING {_COLUMNS}
            ), indexed AS (
                {_index_from_stored(10, 11)}
            ), audited AS (
                {_event_from_stored(12)}
            )
            SELECT {_COLUMNS} FROM stored
            """,
            uuid.UUID(record.id),
            uuid.UUID(record.tenant_id),
            record.collection_id,
            record.subject_ref,
            record.subject_ct,
            record.dek_version,
            record.data,
            record.version,
            record.created_at,
            fields,
            digests,
            *event.as_row(),
        )
        assert row is not None
        return record_from_row(row)

    async def get(self, tenant_id: str, collection_id: int, record_id: str) -> StoredRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM records "
            "WHERE id = $1 AND tenant_id = $2 AND collection_id = $3",
            uuid.UUID(record_id),
            uuid.UUID(tenant_id),
            collection_id,
        )
        return record_from_row(row) if row else None

    async def update(
        self,
        record: StoredRecord,
        expected_version: int | None,
        index: Sequence[IndexEntry],
        removed_index: Sequence[str],
        event: AuditEvent,
    ) -> StoredRecord:
        # The record was read at ``record.version - 1``: the update applies only if nobody
        # changed it since (and the client's If-Match agrees). One statement, one round trip;
        # the index entries and the audit event are written only when the row was.
        previous = record.version - 1
        row = None
        if expected_version is None or expected_version == previous:
            fields, digests = _index_arrays(index)
            row = await self._pool.fetchrow(
                f"""
                WITH stored AS (
                    UPDATE records SET data = $4, version = $5, updated_at = $6
                    WHERE id = $1 AND tenant_id = $2 AND collection_id = $3 AND version = $5 - 1
                    RETURNING {_COLUMNS}
                ), unindexed AS (
                    DELETE FROM record_index
                    WHERE record_id = $1 AND field = ANY($7::text[])
                      AND EXISTS (SELECT 1 FROM stored)
                ), indexed AS (
                    {_index_from_stored(8, 9)}
                ), audited AS (
                    {_event_from_stored(10)}
                )
                SELECT {_COLUMNS} FROM stored
                """,
                uuid.UUID(record.id),
                uuid.UUID(record.tenant_id),
                record.collection_id,
                record.data,
                record.version,
                record.updated_at,
                list(removed_index),
                fields,
                digests,
                *event.as_row(),
            )
        if row is not None:
            return record_from_row(row)
        current = await self._pool.fetchval(
            "SELECT version FROM records WHERE id = $1 AND tenant_id = $2 AND collection_id = $3",
            uuid.UUID(record.id),
            uuid.UUID(record.tenant_id),
            record.collection_id,
        )
        if current is None:
            raise NotFound("no such record in this collection")
        raise PreconditionFailed(
            f"the record is at version {current}; reload it and apply the change again"
        )

    async def delete(
        self,
        tenant_id: str,
        collection_id: int,
        record_id: str,
        expected_version: int | None,
        event: AuditEvent,
    ) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            current = await connection.fetchval(
                "DELETE FROM records WHERE id = $1 AND tenant_id = $2 AND collection_id = $3 "
                "AND ($4::int IS NULL OR version = $4) RETURNING version",
                uuid.UUID(record_id),
                uuid.UUID(tenant_id),
                collection_id,
                expected_version,
            )
            if current is None:
                exists = await connection.fetchval(
                    "SELECT version FROM records WHERE id = $1 AND tenant_id = $2 "
                    "AND collection_id = $3",
                    uuid.UUID(record_id),
                    uuid.UUID(tenant_id),
                    collection_id,
                )
                if exists is None:
                    raise NotFound("no such record in this collection")
                raise PreconditionFailed(f"the record is at version {exists}")
            await insert_event(connection, event)

    async def search(
        self,
        collection_id: int,
        filters: Sequence[IndexEntry],
        after_seq: int,
        limit: int,
    ) -> list[StoredRecord]:
        if not filters:
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM records WHERE collection_id = $1 AND seq > $2 "
                "ORDER BY seq LIMIT $3",
                collection_id,
                after_seq,
                limit,
            )
            return [record_from_row(row) for row in rows]
        # The first filter drives the index scan; every further filter must match too (AND).
        first, *rest = filters
        arguments: list[object] = [collection_id, after_seq, limit, first.field, first.digest]
        conditions = ""
        for entry in rest:
            arguments.extend([entry.field, entry.digest])
            f, d = len(arguments) - 1, len(arguments)
            conditions += (
                f" AND EXISTS (SELECT 1 FROM record_index i WHERE i.record_id = r.id "
                f"AND i.collection_id = $1 AND i.field = ${f} AND i.digest = ${d})"
            )
        rows = await self._pool.fetch(
            f"SELECT {_R_COLUMNS} FROM record_index x JOIN records r ON r.id = x.record_id "
            f"WHERE x.collection_id = $1 AND x.field = $4 AND x.digest = $5 AND x.seq > $2"
            f"{conditions} ORDER BY x.seq LIMIT $3",
            *arguments,
        )
        return [record_from_row(row) for row in rows]

    async def reencrypt_subject(
        self, tenant_id: str, subject_ref: bytes, reseal: Reseal, event: AuditEvent
    ) -> int:
        """Rewrite every record of a subject with ``reseal`` (new envelopes, subject ciphertext and
        key version) and write ``event``, in one transaction; returns how many records."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"SELECT {_R_COLUMNS}, "
                "c.name AS collection_name, c.fields AS collection_fields "
                "FROM records r JOIN collections c ON c.id = r.collection_id "
                "WHERE r.tenant_id = $1 AND r.subject_ref = $2 ORDER BY r.seq FOR UPDATE OF r",
                uuid.UUID(tenant_id),
                subject_ref,
            )
            for row in rows:
                schema = CollectionSchema.from_stored(
                    row["collection_name"], row["collection_fields"]
                )
                data, subject_ct, dek_version = reseal(record_from_row(row), schema)
                await connection.execute(
                    "UPDATE records SET data = $2, subject_ct = $3, dek_version = $4 WHERE id = $1",
                    row["id"],
                    data,
                    subject_ct,
                    dek_version,
                )
            await insert_event(connection, event)
        return len(rows)

    async def subject_dek_versions(self, tenant_id: str, subject_ref: bytes) -> set[int]:
        rows = await self._pool.fetch(
            "SELECT DISTINCT dek_version FROM records WHERE tenant_id = $1 AND subject_ref = $2",
            uuid.UUID(tenant_id),
            subject_ref,
        )
        return {row["dek_version"] for row in rows}


def _index_arrays(index: Sequence[IndexEntry]) -> tuple[list[str], list[bytes]]:
    return [entry.field for entry in index], [entry.digest for entry in index]


def record_from_row(row: asyncpg.Record) -> StoredRecord:
    return StoredRecord(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        collection_id=row["collection_id"],
        subject_ref=bytes(row["subject_ref"]),
        subject_ct=row["subject_ct"],
        dek_version=row["dek_version"],
        data=row["data"],
        version=row["version"],
        seq=row["seq"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
