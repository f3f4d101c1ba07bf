"""Data subjects: access (GDPR Art. 15, a signed export bundle) and erasure (Art. 17,
crypto-shredding with a signed receipt).

**Erasure order.** The subject's wrapped data keys live in the key store, a database of its own,
so erasure cannot be one transaction. It destroys the keys first, then deletes the records (and,
by cascade, their blind-index entries) together with the ``subject.erase`` audit event in one
data-database transaction. A crash between the two steps leaves records that no key opens any
more (unreadable, and answered as erased); the retry finds them and deletes them. The other order
could leave a live key with no trace of an erasure in progress.

**Other processes** may hold the unwrapped key in their cache: the erasure is published on
``strongroom:keys:evict`` and every process drops the key when it hears it. If the publication
fails (Redis down), the cache TTL (``STRONGROOM_DEK_CACHE_TTL``, default 300 s) bounds how long a
replica can still open the subject's records; they are deleted from the database by then anyway.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom.audit.events import AuditEvent, CallContext
from strongroom.audit.signing import CheckpointSigner
from strongroom.bundle import BUNDLE_FORMAT, RECEIPT_FORMAT, ArraySection, canonical, sign_document
from strongroom.crypto import FieldCipher, envelope_from_text, field_aad
from strongroom.crypto import IntegrityError as CryptoIntegrityError
from strongroom.domain.access import Principal
from strongroom.domain.errors import BadRequest, Conflict, IntegrityFailure, NotFound
from strongroom.domain.keys import KeyService
from strongroom.domain.ports import (
    AccessEvent,
    AuditSink,
    HoldLookup,
    KeyEvictions,
    StoredCollection,
    StoredRecord,
    SubjectKeyStore,
    SubjectRepository,
)
from strongroom.domain.records import SUBJECT_FIELD, subject_id_problem

log = logging.getLogger("strongroom.subjects")

EXPORT_PURPOSE = "data_subject_request"


class SubjectErased(NotFound):
    """The subject's data key was destroyed: whatever is left of it cannot be read."""


@dataclass(frozen=True, slots=True)
class SubjectExport:
    """An export ready to stream: ``chunks()`` yields the bundle (see :mod:`strongroom.bundle`)."""

    subject: str
    chunks: Callable[[], AsyncIterator[bytes]]


class SubjectService:
    """Export and erasure of one data subject of the caller's tenant."""

    def __init__(
        self,
        subjects: SubjectRepository,
        keys: KeyService,
        key_store: SubjectKeyStore,
        holds: HoldLookup,
        audit: AuditSink,
        signer: CheckpointSigner,
        evictions: KeyEvictions | None = None,
    ) -> None:
        self._subjects = subjects
        self._keys = keys
        self._key_store = key_store
        self._holds = holds
        self._audit = audit
        self._signer = signer
        self._evictions = evictions

    async def export(
        self, principal: Principal, context: CallContext, subject_id: str
    ) -> SubjectExport:
        """Every record of the subject in plaintext, the schemas and the access history, as a
        signed bundle. The ``subject.export`` event is durable before the first byte."""
        principal.require("subjects:export")
        tenant_id = principal.tenant_id
        subject_ref = await self._subject_ref(tenant_id, subject_id)
        await self._require_key(tenant_id, subject_ref)
        await self._audit.emit(
            AuditEvent.of(
                context,
                "subject.export",
                resource=_resource(subject_ref),
                subject_ref=subject_ref,
                purpose=EXPORT_PURPOSE,
            )
        )

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in self._bundle(tenant_id, subject_ref):
                yield chunk

        return SubjectExport(subject_ref.hex(), chunks)

    async def erase(
        self, principal: Principal, context: CallContext, subject_id: str
    ) -> dict[str, Any]:
        """Crypto-shred the subject and answer a signed receipt. Refused (409) under a legal
        hold; a repeat answers ``already_erased: true`` with zero counts."""
        principal.require("subjects:erase")
        tenant_id = principal.tenant_id
        subject_ref = await self._subject_ref(tenant_id, subject_id)
        resource = _resource(subject_ref)
        holds = list(await self._holds.holding(tenant_id, subject_ref))
        if holds:
            await self._audit.emit(
                AuditEvent.of(
                    context,
                    "subject.erase",
                    outcome="denied",
                    resource=resource,
                    subject_ref=subject_ref,
                )
            )
            first = holds[0]
            more = f" (and {len(holds) - 1} more)" if len(holds) > 1 else ""
            raise Conflict(
                f"legal hold {first.id} ({first.reason}){more} blocks the erasure of this "
                "subject; release the hold first"
            )
        has_key = await self._key_store.get_subject_key(tenant_id, subject_ref, None) is not None
        if not has_key and await self._subjects.record_count(tenant_id, subject_ref) == 0:
            previous = await self._subjects.last_erasure(tenant_id, subject_ref)
            if previous is None:
                raise NotFound("no such subject in this tenant")
            repeat = AuditEvent.of(
                context, "subject.erase", resource=resource, subject_ref=subject_ref
            )
            await self._audit.emit(repeat)
            return await self._receipt(
                tenant_id, subject_ref, previous.occurred_at, 0, 0, str(repeat.id), True
            )

        keys_destroyed = await self._key_store.delete_subject_keys(tenant_id, subject_ref)
        self._keys.forget_subject(tenant_id, subject_ref)
        await self._publish_eviction(tenant_id, subject_ref)
        event = AuditEvent.of(context, "subject.erase", resource=resource, subject_ref=subject_ref)
        records_deleted = await self._subjects.erase(tenant_id, subject_ref, event)
        # A request that raced the erasure may have cached the key again in the meantime.
        self._keys.forget_subject(tenant_id, subject_ref)
        return await self._receipt(
            tenant_id,
            subject_ref,
            event.occurred_at,
            records_deleted,
            keys_destroyed,
            str(event.id),
            False,
        )

    # -- internals ---------------------------------------------------------------------------

    async def _subject_ref(self, tenant_id: str, subject_id: str) -> bytes:
        problem = subject_id_problem(subject_id)
        if problem:
            raise BadRequest(f"invalid subject id: {problem}")
        return (await self._keys.tenant_index(tenant_id)).subject_ref(subject_id)

    async def _require_key(self, tenant_id: str, subject_ref: bytes) -> None:
        if await self._key_store.get_subject_key(tenant_id, subject_ref, None) is not None:
            return
        if await self._subjects.record_count(tenant_id, subject_ref):
            raise SubjectErased("the subject was erased: its data key was destroyed")
        raise NotFound("no such subject in this tenant")

    async def _bundle(self, tenant_id: str, subject_ref: bytes) -> AsyncIterator[bytes]:
        generated_at = datetime.now(UTC)
        async with self._subjects.snapshot(tenant_id, subject_ref) as snapshot:
            collections = {c.id: c for c in await snapshot.collections()}
            used: set[int] = set()
            records = ArraySection()
            yield b'{"records":'
            async for stored in snapshot.records():
                collection = collections[stored.collection_id]
                used.add(collection.id)
                item = await self._plain_record(collection, stored)
                chunk = records.add(item)
                if chunk:
                    yield chunk
            tail, records_hash = records.close()
            schemas = {collections[cid].schema.name: _schema_json(collections[cid]) for cid in used}
            schemas_bytes = canonical(schemas)
            yield tail + b',"schemas":' + schemas_bytes + b',"access_history":'
            history = ArraySection()
            async for event in snapshot.history():
                chunk = history.add(_history_json(event))
                if chunk:
                    yield chunk
            tail, history_hash = history.close()
        manifest = await sign_document(
            {
                "format": BUNDLE_FORMAT,
                "tenant_id": tenant_id,
                "subject": subject_ref.hex(),
                "generated_at": generated_at.isoformat(),
                "counts": {
                    "records": records.count,
                    "schemas": len(schemas),
                    "access_history": history.count,
                },
                "sections": {
                    "records": records_hash,
                    "schemas": _sha256(schemas_bytes),
                    "access_history": history_hash,
                },
            },
            self._signer,
        )
        yield tail + b',"manifest":' + canonical(manifest) + b"}"

    async def _plain_record(
        self, collection: StoredCollection, stored: StoredRecord
    ) -> dict[str, Any]:
        cipher = await self._keys.subject_cipher(
            stored.tenant_id, stored.subject_ref, stored.dek_version
        )
        schema = collection.schema
        data: dict[str, Any] = {}
        for name, value in stored.data.items():
            spec = schema.fields.get(name)
            if spec is not None and spec.sensitive:
                data[name] = orjson.loads(_open(stored, schema.name, name, cipher, value))
            else:
                data[name] = value
        subject_id = _open(stored, schema.name, SUBJECT_FIELD, cipher, stored.subject_ct)
        return {
            "id": stored.id,
            "collection": schema.name,
            "subject_id": subject_id.decode(),
            "version": stored.version,
            "data": data,
            "created_at": stored.created_at.astimezone(UTC).isoformat(),
            "updated_at": stored.updated_at.astimezone(UTC).isoformat(),
        }

    async def _publish_eviction(self, tenant_id: str, subject_ref: bytes) -> None:
        if self._evictions is None:
            return
        try:
            await self._evictions.publish(tenant_id, subject_ref)
        except Exception as exc:
            log.warning(
                "could not publish a key eviction (%s); other processes drop the key when "
                "their cache entry expires",
                type(exc).__name__,
            )

    async def _receipt(
        self,
        tenant_id: str,
        subject_ref: bytes,
        erased_at: datetime,
        records_deleted: int,
        keys_destroyed: int,
        audit_event_id: str,
        already_erased: bool,
    ) -> dict[str, Any]:
        return await sign_document(
            {
                "format": RECEIPT_FORMAT,
                "tenant_id": tenant_id,
                "subject": subject_ref.hex(),
                "erased_at": erased_at.astimezone(UTC).isoformat(),
                "records_deleted": records_deleted,
                "keys_destroyed": keys_destroyed,
                "audit_event_id": audit_event_id,
                "already_erased": already_erased,
            },
            self._signer,
        )


def _open(
    stored: StoredRecord, collection: str, field: str, cipher: FieldCipher, value: object
) -> bytes:
    if not isinstance(value, str):
        raise IntegrityFailure(f"stored value of {field!r} is not an envelope")
    aad = field_aad(stored.tenant_id, collection, stored.id, field, cipher.dek_version)
    try:
        return cipher.decrypt(envelope_from_text(value), aad)
    except CryptoIntegrityError:
        raise IntegrityFailure(
            f"the stored ciphertext of field {field!r} failed authentication"
        ) from None


def _schema_json(collection: StoredCollection) -> dict[str, Any]:
    # Art. 15(1)(d): how long the data is kept is part of what the subject is told.
    return {
        "fields": collection.schema.to_json(),
        "retention_days": collection.schema.retention_days,
        "version": collection.version,
    }


def _history_json(event: AccessEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "resource": event.resource,
        "fields": list(event.fields),
        "purpose": event.purpose,
        "outcome": event.outcome,
    }


def _resource(subject_ref: bytes) -> str:
    return f"subjects/{subject_ref.hex()}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
