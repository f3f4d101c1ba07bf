"""The audit hash chain: the canonical bytes of an event and how sealed events link.

Sealed events form one chain in seal order, kept in ``audit_chain`` apart from the events. The
link at ``position`` p (counting from 1, without gaps) names its event by ``seq`` and stores
``prev_hash`` (the hash at p - 1, or :data:`GENESIS_HASH` for p = 1) and
``hash = SHA-256(prev_hash || canonical_event(event))``. Changing, removing, adding or moving an
event changes a hash that a later event, the chain head or a signed checkpoint vouches for.

The canonical encoding covers every column of :data:`~strongroom.audit.events.COLUMNS`. Each part
is length-prefixed (:func:`~strongroom.crypto._encoding.encode_parts`), optional values carry a
presence byte (NULL is not the empty string), and the label names the format version: no two
different events encode to the same bytes, whatever their text contains.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from strongroom.audit.events import COLUMNS, AuditEvent
from strongroom.audit.store import DbConnection
from strongroom.crypto._encoding import encode_parts, text_bytes

GENESIS_HASH = bytes(32)
"""The ``prev_hash`` of the first event ever sealed."""

HASH_BYTES = 32
CANONICAL_LABEL = b"strongroom/audit-event/v1"

_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ABSENT = b"\x00"
_PRESENT = b"\x01"

# The columns, in their canonical order, and how each becomes bytes. Adding a column to the
# event model is a new format version (a new label), never a silent change of this one.
CANONICAL_COLUMNS = (
    "id",
    "occurred_at",
    "tenant_id",
    "actor",
    "action",
    "resource",
    "subject_ref",
    "fields",
    "purpose",
    "outcome",
    "request_id",
    "trace_id",
    "client",
)

# Links with their events, read back for verification: the link's columns (its position as
# ``chain_position``), whether its event is gone, then every event column (NULL when it is gone).
LINKED_EVENTS = "audit_chain c LEFT JOIN audit_events e ON e.seq = c.event_seq"
LINK_SELECT = ", ".join(
    (
        "c.position AS chain_position",
        "c.event_seq",
        "c.prev_hash",
        "c.hash",
        "e.seq IS NULL AS event_gone",
        *(f"e.{name}" for name in COLUMNS),
    )
)

# Bounds an event's ``xact`` from above by what the statement can see anyway (a transaction at
# or after its snapshot's xmax is invisible to it). It changes no result; it turns "xact at or
# above the horizon" into a range, which the planner estimates as narrow even on a table never
# analyzed. With the lower bound alone it guesses a third of the trail and scans the whole of
# audit_events and audit_chain: about a second per sealer batch at a million events.
VISIBLE_XACT = "e.xact < pg_snapshot_xmax(pg_current_snapshot())"
NOT_LINKED = "NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_seq = e.seq)"
# What waits to be sealed: the events (as ``e``) after the cursor ($1, $2) that have no link.
# The sealer takes them in order; verification counts them.
UNSEALED_AFTER_CURSOR = f"(e.xact, e.seq) > ($1, $2) AND {VISIBLE_XACT} AND {NOT_LINKED}"

# The sealer's place in (xact, seq) order, kept with the chain head: every event at or before it
# is sealed (see strongroom.audit.sealer). asyncpg reads and writes an xid8 as an int.
Cursor = tuple[int, int]


def timestamp_micros(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch, UTC; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return (moment - _EPOCH) // _MICROSECOND


def _uuid(value: Any) -> bytes:
    return value.bytes if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).bytes


def _text(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return text_bytes(value)


def _blob(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return bytes(value)


def _time(value: Any) -> bytes:
    return _I64.pack(timestamp_micros(value))


def _optional(encode: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def encode_optional(value: Any) -> bytes:
        return _ABSENT if value is None else _PRESENT + encode(value)

    return encode_optional


def _names(values: Any) -> bytes:
    """A list of optional texts: its length, then each item with a presence byte and a length."""
    items = list(values)
    out = bytearray(_U32.pack(len(items)))
    for item in items:
        if item is None:
            out += _ABSENT
            continue
        encoded = _text(item)
        out += _PRESENT
        out += _U32.pack(len(encoded))
        out += encoded
    return bytes(out)


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "id": _uuid,
    "occurred_at": _time,
    "tenant_id": _optional(_uuid),
    "actor": _optional(_text),
    "action": _text,
    "resource": _optional(_text),
    "subject_ref": _optional(_blob),
    "fields": _names,
    "purpose": _optional(_text),
    "outcome": _text,
    "request_id": _optional(_text),
    "trace_id": _optional(_text),
    "client": _optional(_text),
}
_ORDER = tuple(COLUMNS.index(name) for name in CANONICAL_COLUMNS)


def canonical_row(values: Sequence[Any]) -> bytes:
    """Canonical bytes of an event given as column values in :data:`COLUMNS` order (as
    :meth:`AuditEvent.as_row` returns them, or as read back from ``audit_events``)."""
    return encode_parts(
        CANONICAL_LABEL,
        *(
            _ENCODERS[name](values[index])
            for name, index in zip(CANONICAL_COLUMNS, _ORDER, strict=True)
        ),
    )


def canonical_event(event: AuditEvent) -> bytes:
    """Canonical bytes of an event object."""
    return canonical_row(event.as_row())


def link_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    """The hash of an event sealed after ``prev_hash``."""
    return hashlib.sha256(prev_hash + canonical).digest()


def canonical_record(record: Any) -> bytes:
    """Canonical bytes of a database row that has every event column, looked up by name."""
    return canonical_row(tuple(record[name] for name in COLUMNS))


@dataclass(frozen=True, slots=True)
class ChainPoint:
    """A position in the chain and the hash of the event sealed there (0 and
    :data:`GENESIS_HASH` before the first event)."""

    position: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the chain starts after retention deleted its beginning: the position and hash of the
    last deleted event, signed when the cut was made."""

    position: int
    hash: bytes
    cut_at: datetime
    key_id: str
    signature: bytes

    @property
    def point(self) -> ChainPoint:
        return ChainPoint(self.position, self.hash)

    def as_dict(self) -> dict[str, object]:
        return {
            "position": self.position,
            "hash": self.hash.hex(),
            "cut_at": self.cut_at.astimezone(UTC).isoformat(),
            "key_id": self.key_id,
        }


async def read_head(connection: DbConnection, *, for_update: bool = False) -> ChainPoint:
    """The last sealed position and its hash, as the sealer recorded them."""
    row = await connection.fetchrow(
        "SELECT position, hash FROM audit_chain_head WHERE id = 1"
        + (" FOR UPDATE" if for_update else "")
    )
    if row is None:
        raise RuntimeError("audit_chain_head is empty; run the migrations")
    return ChainPoint(row["position"], bytes(row["hash"]))


async def read_anchor(connection: DbConnection) -> Anchor | None:
    """The retention anchor, or None when the chain still starts at its genesis."""
    row = await connection.fetchrow(
        "SELECT position, hash, cut_at, key_id, signature FROM audit_anchor WHERE id = 1"
    )
    if row is None:
        return None
    return Anchor(
        row["position"], bytes(row["hash"]), row["cut_at"], row["key_id"], bytes(row["signature"])
    )
