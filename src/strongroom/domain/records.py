"""Records: encrypt on write, mask on read, reveal with a purpose, search by blind index."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom import privacy
from strongroom.audit.events import AuditEvent, CallContext
from strongroom.crypto import (
    BlindIndex,
    FieldCipher,
    envelope_from_text,
    envelope_to_text,
    field_aad,
)
from strongroom.crypto import IntegrityError as CryptoIntegrityError
from strongroom.domain.access import Principal
from strongroom.domain.collections import check_collection_name
from strongroom.domain.errors import (
    BadRequest,
    Conflict,
    FieldError,
    IntegrityFailure,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from strongroom.domain.keys import KeyService
from strongroom.domain.ports import (
    AuditSink,
    CollectionRepository,
    IndexEntry,
    RecordRepository,
    StoredCollection,
    StoredRecord,
)
from strongroom.domain.schema import CollectionSchema, FieldSpec, normalise_value, validate_data

# The subject id is encrypted like a field, under a name no schema field can take.
SUBJECT_FIELD = "$subject"
MAX_SUBJECT_ID = 256
RESERVED_QUERY = frozenset({"limit", "cursor", "reveal"})


@dataclass(frozen=True, slots=True)
class RecordView:
    """What a caller sees: sensitive values masked unless revealed."""

    id: str
    collection: str
    subject_id: str
    version: int
    data: dict[str, Any]
    revealed: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    items: list[RecordView]
    next_cursor: str | None


class RecordService:
    """Use cases on records. Every method takes the caller's principal and call context."""

    def __init__(
        self,
        collections: CollectionRepository,
        records: RecordRepository,
        keys: KeyService,
        audit: AuditSink,
        page_size_max: int = 100,
    ) -> None:
        self._collections = collections
        self._records = records
        self._keys = keys
        self._audit = audit
        self._page_size_max = page_size_max

    async def create(
        self, principal: Principal, context: CallContext, collection_name: str, body: object
    ) -> RecordView:
        principal.require("records:write")
        collection = await self._collection(principal, collection_name)
        if not isinstance(body, dict):
            raise ValidationFailed(
                "the body must be a JSON object", [FieldError("", "expected object")]
            )
        unknown = sorted(set(body) - {"subject_id", "data"})
        errors = [FieldError(f"/{key}", "unknown member") for key in unknown]
        subject_id = body.get("subject_id")
        subject_problem = subject_id_problem(subject_id)
        if subject_problem:
            errors.append(FieldError("/subject_id", subject_problem))
        if "data" not in body:
            errors.append(FieldError("/data", "required"))
        if errors:
            raise ValidationFailed("invalid record", errors)
        assert isinstance(subject_id, str)
        data = validate_data(collection.schema, body["data"], partial=False)

        index = await self._keys.tenant_index(principal.tenant_id)
        subject_ref = index.subject_ref(subject_id)
        cipher = await self._keys.subject_cipher(principal.tenant_id, subject_ref, create=True)
        record_id = str(uuid.uuid4())
        stored_data = self._seal(principal.tenant_id, collection, record_id, cipher, data)
        subject_ct = self._encrypt(
            principal.tenant_id,
            collection.schema.name,
            record_id,
            SUBJECT_FIELD,
            cipher,
            subject_id,
        )
        now = datetime.now(UTC)
        record = StoredRecord(
            id=record_id,
            tenant_id=principal.tenant_id,
            collection_id=collection.id,
            subject_ref=subject_ref,
            subject_ct=subject_ct,
            dek_version=cipher.dek_version,
            data=stored_data,
            version=1,
            seq=0,
            created_at=now,
            updated_at=now,
        )
        event = AuditEvent.of(
            context,
            "record.create",
            resource=_resource(collection, record_id),
            subject_ref=subject_ref,
            fields=tuple(sorted(data)),
        )
        stored = await self._records.insert(
            record, _index_entries(index, collection.schema, data), event
        )
        return self._view(collection.schema, stored, subject_id, data, index, ())

    async def read(
        self,
        principal: Principal,
        context: CallContext,
        collection_name: str,
        record_id: str,
        reveal: list[str],
        purpose: str | None,
    ) -> RecordView:
        principal.require("records:read")
        if reveal:
            principal.require("records:reveal")
            purpose = principal.require_purpose(purpose)
        collection = await self._collection(principal, collection_name)
        wanted = _reveal_fields(collection.schema, reveal)
        stored = await self._get(principal, collection, record_id)
        view = await self._open(principal, collection, stored, wanted)
        action = "record.reveal" if wanted else "record.read"
        await self._audit.emit(
            AuditEvent.of(
                context,
                action,
                resource=_resource(collection, stored.id),
                subject_ref=stored.subject_ref,
                fields=wanted,
                purpose=purpose if wanted else None,
            )
        )
        return view

    async def update(
        self,
        principal: Principal,
        context: CallContext,
        collection_name: str,
        record_id: str,
        body: object,
        expected_version: int | None,
    ) -> RecordView:
        principal.require("records:write")
        collection = await self._collection(principal, collection_name)
        if not isinstance(body, dict):
            raise ValidationFailed(
                "the body must be a JSON object", [FieldError("", "expected object")]
            )
        unknown = sorted(set(body) - {"data"})
        if unknown or "data" not in body:
            errors = [FieldError(f"/{key}", "unknown member") for key in unknown]
            if "data" not in body:
                errors.append(FieldError("/data", "required"))
            raise ValidationFailed("invalid record update", errors)
        changes = validate_data(collection.schema, body["data"], partial=True)
        # Without If-Match the caller asks for "apply my change to the current record": when a
        # concurrent update wins the race, read again and re-apply instead of refusing.
        attempts = 1 if expected_version is not None else 25
        for attempt in range(attempts):
            try:
                result = await self._apply_update(
                    principal, context, collection, record_id, changes, expected_version
                )
            except PreconditionFailed:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.001 * (attempt + 1)))  # noqa: S311
                continue
            return await self._open(principal, collection, result, ())
        raise AssertionError("unreachable")

    async def _apply_update(
        self,
        principal: Principal,
        context: CallContext,
        collection: StoredCollection,
        record_id: str,
        changes: dict[str, Any],
        expected_version: int | None,
    ) -> StoredRecord:
        stored = await self._get(principal, collection, record_id)
        index = await self._keys.tenant_index(principal.tenant_id)
        cipher = await self._keys.subject_cipher(
            principal.tenant_id, stored.subject_ref, stored.dek_version
        )
        kept = {key: value for key, value in stored.data.items() if key not in changes}
        present = {key: value for key, value in changes.items() if value is not None}
        removed = [key for key, value in changes.items() if value is None]
        sealed = self._seal(principal.tenant_id, collection, stored.id, cipher, present)
        searchable_removed = [k for k in removed if collection.schema.fields[k].searchable]
        updated = StoredRecord(
            id=stored.id,
            tenant_id=stored.tenant_id,
            collection_id=stored.collection_id,
            subject_ref=stored.subject_ref,
            subject_ct=stored.subject_ct,
            dek_version=stored.dek_version,
            data={**kept, **sealed},
            version=stored.version + 1,
            seq=stored.seq,
            created_at=stored.created_at,
            updated_at=datetime.now(UTC),
        )
        event = AuditEvent.of(
            context,
            "record.update",
            resource=_resource(collection, stored.id),
            subject_ref=stored.subject_ref,
            fields=tuple(sorted(changes)),
        )
        return await self._records.update(
            updated,
            expected_version,
            _index_entries(index, collection.schema, present),
            searchable_removed,
            event,
        )

    async def delete(
        self,
        principal: Principal,
        context: CallContext,
        collection_name: str,
        record_id: str,
        expected_version: int | None,
    ) -> None:
        principal.require("records:write")
        collection = await self._collection(principal, collection_name)
        stored = await self._get(principal, collection, record_id)
        event = AuditEvent.of(
            context,
            "record.delete",
            resource=_resource(collection, stored.id),
            subject_ref=stored.subject_ref,
        )
        await self._records.delete(
            principal.tenant_id, collection.id, stored.id, expected_version, event
        )

    async def search(
        self,
        principal: Principal,
        context: CallContext,
        collection_name: str,
        query: Mapping[str, list[str]],
    ) -> Page:
        principal.require("records:read")
        collection = await self._collection(principal, collection_name)
        limit = _limit(query, self._page_size_max)
        after = decode_cursor(_single(query, "cursor")) if "cursor" in query else 0
        if "reveal" in query:
            raise BadRequest("reveal is available on single records only")
        index = await self._keys.tenant_index(principal.tenant_id)
        filters: list[IndexEntry] = []
        errors: list[FieldError] = []
        for name, values in query.items():
            if name in RESERVED_QUERY:
                continue
            spec = collection.schema.fields.get(name)
            if spec is None or not spec.searchable:
                reason = "unknown field" if spec is None else "field is not searchable"
                errors.append(FieldError(f"?{name}", reason))
                continue
            if len(values) != 1:
                errors.append(FieldError(f"?{name}", "give one value per field"))
                continue
            try:
                value = _as_index_text(spec, values[0])
            except ValueError as exc:
                errors.append(FieldError(f"?{name}", str(exc)))
                continue
            filters.append(
                IndexEntry(name, index.digest_value(collection.schema.name, name, spec.type, value))
            )
        if errors:
            raise ValidationFailed("invalid search", errors)
        rows = await self._records.search(collection.id, filters, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        items: list[RecordView] = []
        for row in rows:
            try:
                items.append(await self._open(principal, collection, row, ()))
            except NotFound:
                # The subject's key was destroyed (erasure); rows restored from an older backup
                # are unreadable and are not shown.
                continue
        await self._audit.emit(
            AuditEvent.of(
                context,
                "record.search",
                resource=f"collections/{collection.schema.name}",
                fields=tuple(sorted(f.field for f in filters)),
            )
        )
        cursor = encode_cursor(rows[-1].seq) if more and rows else None
        return Page(items, cursor)

    async def rotate_subject_key(
        self, principal: Principal, context: CallContext, subject_id: str
    ) -> dict[str, Any]:
        """DEK rotation: a new data key for the subject, every record re-encrypted under it in
        one transaction with its audit event, then the old key versions destroyed."""
        principal.require("admin")
        problem = subject_id_problem(subject_id)
        if problem:
            raise BadRequest(f"subject id: {problem}")
        tenant_id = principal.tenant_id
        subject_ref = (await self._keys.tenant_index(tenant_id)).subject_ref(subject_id)
        old = {
            version: await self._keys.subject_cipher(tenant_id, subject_ref, version)
            for version in await self._records.subject_dek_versions(tenant_id, subject_ref)
        }
        new = await self._keys.new_subject_version(tenant_id, subject_ref)

        def reseal(
            record: StoredRecord, schema: CollectionSchema
        ) -> tuple[dict[str, Any], str, int]:
            if record.dek_version == new.dek_version:  # created after the new key existed
                return record.data, record.subject_ct, record.dek_version
            cipher = old.get(record.dek_version)
            if cipher is None:  # another rotation raced this one; nothing is written
                raise Conflict("the subject's data key changed meanwhile; retry")
            data: dict[str, Any] = {}
            for name, value in record.data.items():
                spec = schema.fields.get(name)
                if spec is not None and spec.sensitive:
                    plain = self._decrypt(tenant_id, schema.name, record.id, name, cipher, value)
                    value = self._encrypt(tenant_id, schema.name, record.id, name, new, plain)
                data[name] = value
            subject = self._decrypt(
                tenant_id, schema.name, record.id, SUBJECT_FIELD, cipher, record.subject_ct
            )
            subject_ct = self._encrypt(
                tenant_id, schema.name, record.id, SUBJECT_FIELD, new, subject
            )
            return data, subject_ct, new.dek_version

        event = AuditEvent.of(
            context,
            "key.rotate",
            resource=f"subjects/{subject_ref.hex()}/data-key",
            subject_ref=subject_ref,
        )
        count = await self._records.reencrypt_subject(tenant_id, subject_ref, reseal, event)
        destroyed = await self._keys.destroy_old_versions(tenant_id, subject_ref, new.dek_version)
        return {
            "subject": subject_ref.hex(),
            "dek_version": new.dek_version,
            "records_reencrypted": count,
            "old_keys_destroyed": destroyed,
            "audit_event_id": str(event.id),
        }

    # -- internals ---------------------------------------------------------------------------

    async def _collection(self, principal: Principal, name: str) -> StoredCollection:
        # A name no collection can have is refused before it reaches the database (which
        # rejects some of them, NUL for one, with an error rather than "not found").
        check_collection_name(name)
        collection = await self._collections.get(principal.tenant_id, name)
        if collection is None:
            raise NotFound(f"no collection named {name!r}")
        return collection

    async def _get(
        self, principal: Principal, collection: StoredCollection, record_id: str
    ) -> StoredRecord:
        canonical = canonical_record_id(record_id)
        stored = await self._records.get(principal.tenant_id, collection.id, canonical)
        if stored is None:
            raise NotFound("no such record in this collection")
        return stored

    async def _open(
        self,
        principal: Principal,
        collection: StoredCollection,
        stored: StoredRecord,
        reveal: Iterable[str],
    ) -> RecordView:
        cipher = await self._keys.subject_cipher(
            principal.tenant_id, stored.subject_ref, stored.dek_version
        )
        schema = collection.schema
        plain: dict[str, Any] = {}
        for name, value in stored.data.items():
            spec = schema.fields.get(name)
            if spec is not None and spec.sensitive:
                plain[name] = orjson.loads(
                    self._decrypt(stored.tenant_id, schema.name, stored.id, name, cipher, value)
                )
            else:
                plain[name] = value
        subject_id = self._decrypt(
            stored.tenant_id, schema.name, stored.id, SUBJECT_FIELD, cipher, stored.subject_ct
        ).decode()
        index = await self._keys.tenant_index(principal.tenant_id)
        return self._view(schema, stored, subject_id, plain, index, tuple(reveal))

    def _view(
        self,
        schema: CollectionSchema,
        stored: StoredRecord,
        subject_id: str,
        plain: Mapping[str, Any],
        index: BlindIndex,
        reveal: tuple[str, ...],
    ) -> RecordView:
        shown: dict[str, Any] = {}
        for name, value in plain.items():
            spec = schema.fields[name]
            if not spec.sensitive or name in reveal:
                shown[name] = value
            else:
                shown[name] = mask_value(index, schema.name, spec, value)
        return RecordView(
            id=stored.id,
            collection=schema.name,
            subject_id=subject_id,
            version=stored.version,
            data=shown,
            revealed=reveal,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
        )

    def _seal(
        self,
        tenant_id: str,
        collection: StoredCollection,
        record_id: str,
        cipher: FieldCipher,
        data: Mapping[str, Any],
    ) -> dict[str, Any]:
        sealed: dict[str, Any] = {}
        for name, value in data.items():
            if collection.schema.fields[name].sensitive:
                sealed[name] = self._encrypt(
                    tenant_id,
                    collection.schema.name,
                    record_id,
                    name,
                    cipher,
                    orjson.dumps(value),
                )
            else:
                sealed[name] = value
        return sealed

    @staticmethod
    def _encrypt(
        tenant_id: str,
        collection: str,
        record_id: str,
        field: str,
        cipher: FieldCipher,
        value: str | bytes,
    ) -> str:
        plaintext = value.encode() if isinstance(value, str) else value
        aad = field_aad(tenant_id, collection, record_id, field, cipher.dek_version)
        return envelope_to_text(cipher.encrypt(plaintext, aad))

    @staticmethod
    def _decrypt(
        tenant_id: str,
        collection: str,
        record_id: str,
        field: str,
        cipher: FieldCipher,
        value: object,
    ) -> bytes:
        if not isinstance(value, str):
            raise IntegrityFailure(f"stored value of {field!r} is not an envelope")
        aad = field_aad(tenant_id, collection, record_id, field, cipher.dek_version)
        try:
            return cipher.decrypt(envelope_from_text(value), aad)
        except CryptoIntegrityError:
            raise IntegrityFailure(
                f"the stored ciphertext of field {field!r} failed authentication"
            ) from None


def mask_value(index: BlindIndex, collection: str, spec: FieldSpec, value: Any) -> str:
    """The masked form of a sensitive value under the field's policy."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if spec.mask == "hash":
        digest = index.pseudonym(f"mask/{collection}/{spec.name}", text)
        return "hash:" + digest[:8].hex()
    return privacy.mask(spec.type, text, spec.mask)


def subject_id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "required: a string identifying the data subject"
    if not 0 < len(value) <= MAX_SUBJECT_ID:
        return f"1 to {MAX_SUBJECT_ID} characters"
    if value != value.strip() or any(
        unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value
    ):
        return "no control characters or surrounding whitespace"
    return None


def canonical_record_id(record_id: str) -> str:
    try:
        parsed = uuid.UUID(record_id)
    except ValueError:
        raise BadRequest("record ids are UUIDs") from None
    if str(parsed) != record_id.lower():
        raise BadRequest("record ids are UUIDs in the 8-4-4-4-12 form")
    return str(parsed)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": seq})).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = payload["after"]
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
            raise ValueError
    except (
        ValueError,
        TypeError,
        KeyError,
        UnicodeEncodeError,
        binascii.Error,
        orjson.JSONDecodeError,
    ):
        raise BadRequest("the cursor is not one this service issued") from None
    return after


def _single(query: Mapping[str, list[str]], name: str) -> str:
    values = query.get(name, [])
    if len(values) != 1:
        raise BadRequest(f"give {name} once")
    return values[0]


def _limit(query: Mapping[str, list[str]], maximum: int) -> int:
    if "limit" not in query:
        return min(20, maximum)
    raw = _single(query, "limit")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}")
    return int(raw)


def _reveal_fields(schema: CollectionSchema, reveal: list[str]) -> tuple[str, ...]:
    errors: list[FieldError] = []
    for name in reveal:
        spec = schema.fields.get(name)
        if spec is None:
            errors.append(FieldError(f"?reveal={name}", "unknown field"))
        elif not spec.sensitive:
            errors.append(
                FieldError(f"?reveal={name}", "field is not sensitive; it is never masked")
            )
    if errors:
        raise ValidationFailed("cannot reveal these fields", errors)
    return tuple(dict.fromkeys(reveal))


def _as_index_text(spec: FieldSpec, raw: str) -> str:
    """Search values arrive as query text; convert them the way writes store them."""
    if spec.type == "number":
        try:
            number: Any = int(raw) if raw.lstrip("-").isdigit() else float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
        return orjson.dumps(normalise_value("number", number)).decode()
    if spec.type == "boolean":
        if raw not in ("true", "false"):
            raise ValueError("expected true or false")
        return raw
    return _index_text(normalise_value(spec.type, raw))


def _index_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _index_entries(
    index: BlindIndex, schema: CollectionSchema, data: Mapping[str, Any]
) -> list[IndexEntry]:
    return [
        IndexEntry(
            name,
            index.digest_value(schema.name, name, schema.fields[name].type, _index_text(value)),
        )
        for name, value in data.items()
        if value is not None and schema.fields[name].searchable
    ]


def _resource(collection: StoredCollection, record_id: str) -> str:
    return f"collections/{collection.schema.name}/records/{record_id}"
