"""Ports: what the domain needs from the outside world, as Protocols. Adapters live in store/,
cache/, audit/ and crypto/; constructors receive them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from strongroom.audit.events import AuditEvent
from strongroom.crypto import WrappedKey
from strongroom.domain.schema import CollectionSchema


@dataclass(frozen=True, slots=True)
class StoredCollection:
    id: int
    tenant_id: str
    schema: CollectionSchema
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored: sensitive values are envelope text, the subject is a pseudonym."""

    id: str
    tenant_id: str
    collection_id: int
    subject_ref: bytes
    subject_ct: str
    dek_version: int
    data: dict[str, Any]
    version: int
    seq: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class IndexEntry:
    field: str
    digest: bytes


class CollectionRepository(Protocol):
    async def get(self, tenant_id: str, name: str) -> StoredCollection | None: ...

    async def put(
        self, tenant_id: str, schema: CollectionSchema, event: AuditEvent
    ) -> tuple[StoredCollection, bool]:
        """Create or replace; returns the stored collection and whether it was created."""
        ...

    async def has_records(self, collection_id: int) -> bool: ...


class RecordRepository(Protocol):
    async def insert(
        self, record: StoredRecord, index: Sequence[IndexEntry], event: AuditEvent
    ) -> StoredRecord: ...

    async def get(
        self, tenant_id: str, collection_id: int, record_id: str
    ) -> StoredRecord | None: ...

    async def update(
        self,
        record: StoredRecord,
        expected_version: int | None,
        index: Sequence[IndexEntry],
        removed_index: Sequence[str],
        event: AuditEvent,
    ) -> StoredRecord: ...

    async def delete(
        self,
        tenant_id: str,
        collection_id: int,
        record_id: str,
        expected_version: int | None,
        event: AuditEvent,
    ) -> None: ...

    async def search(
        self,
        collection_id: int,
        filters: Sequence[IndexEntry],
        after_seq: int,
        limit: int,
    ) -> list[StoredRecord]: ...

    async def subject_dek_versions(self, tenant_id: str, subject_ref: bytes) -> set[int]: ...

    async def reencrypt_subject(
        self,
        tenant_id: str,
        subject_ref: bytes,
        reseal: Callable[[StoredRecord, CollectionSchema], tuple[dict[str, Any], str, int]],
        event: AuditEvent,
    ) -> int:
        """Rewrite every record of the subject with ``reseal`` and write ``event``, atomically."""
        ...


class KeyStore(Protocol):
    """Wrapped keys, kept apart from the data they protect."""

    async def get_tenant_key(self, tenant_id: str) -> WrappedKey | None: ...

    async def add_tenant_key(self, tenant_id: str, wrapped: WrappedKey) -> WrappedKey:
        """Store unless one exists; return the stored key (the winner of a race)."""
        ...

    async def get_subject_key(
        self, tenant_id: str, subject_ref: bytes, dek_version: int | None
    ) -> tuple[int, WrappedKey] | None:
        """The given version, or the newest when ``dek_version`` is None."""
        ...

    async def add_subject_key(
        self, tenant_id: str, subject_ref: bytes, dek_version: int, wrapped: WrappedKey
    ) -> tuple[int, WrappedKey]:
        """Store unless one exists; return the stored key (the winner of a race)."""
        ...

    async def newest_or_add_subject_key(
        self, tenant_id: str, subject_ref: bytes, wrapped: WrappedKey
    ) -> tuple[int, WrappedKey]:
        """The subject's newest key; when it has none, ``wrapped`` stored as version 1 (or the
        key a racing writer stored first)."""
        ...

    async def delete_subject_keys_below(
        self, tenant_id: str, subject_ref: bytes, dek_version: int
    ) -> int:
        """Destroy the subject's key versions older than ``dek_version``; returns how many."""
        ...


class AuditSink(Protocol):
    """Where read/reveal events go; ``emit`` returns once the event is durable."""

    async def emit(self, event: AuditEvent) -> None: ...


# -- data subjects (export and erasure) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One audit event about a subject, as the subject's access history shows it."""

    id: str
    occurred_at: datetime
    actor: str | None
    action: str
    resource: str | None
    fields: tuple[str, ...]
    purpose: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class ErasureMark:
    """The audit event that recorded a subject's erasure."""

    event_id: str
    occurred_at: datetime


class SubjectSnapshot(Protocol):
    """One consistent view of a subject's data (a repeatable-read transaction)."""

    async def collections(self) -> list[StoredCollection]: ...

    def records(self) -> AsyncIterator[StoredRecord]: ...

    def history(self) -> AsyncIterator[AccessEvent]: ...


class SubjectRepository(Protocol):
    async def record_count(self, tenant_id: str, subject_ref: bytes) -> int: ...

    def snapshot(
        self, tenant_id: str, subject_ref: bytes
    ) -> AbstractAsyncContextManager[SubjectSnapshot]: ...

    async def last_erasure(self, tenant_id: str, subject_ref: bytes) -> ErasureMark | None: ...

    async def erase(self, tenant_id: str, subject_ref: bytes, event: AuditEvent) -> int:
        """Delete the subject's records (and their index entries) with ``event``, in one
        transaction; returns how many records went."""
        ...


class SubjectKeyStore(Protocol):
    async def get_subject_key(
        self, tenant_id: str, subject_ref: bytes, dek_version: int | None
    ) -> tuple[int, WrappedKey] | None: ...

    async def delete_subject_keys(self, tenant_id: str, subject_ref: bytes) -> int:
        """Destroy every version of the subject's wrapped data key; returns how many."""
        ...


class Hold(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def reason(self) -> str: ...


class HoldLookup(Protocol):
    async def holding(self, tenant_id: str, subject_ref: bytes | None) -> Sequence[Hold]:
        """Active holds covering the tenant as a whole or this subject."""
        ...


class KeyEvictions(Protocol):
    """Tells every process to drop a subject's unwrapped keys from its cache."""

    async def publish(self, tenant_id: str, subject_ref: bytes) -> None: ...
