"""The canonical event encoding: deterministic, total over every column, unambiguous."""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.audit.chain import (
    CANONICAL_COLUMNS,
    GENESIS_HASH,
    canonical_event,
    canonical_record,
    canonical_row,
    link_hash,
    timestamp_micros,
)
from strongroom.audit.events import COLUMNS, AuditEvent

EVENT = AuditEvent(
    action="record.reveal",
    outcome="success",
    tenant_id="6f1c8f4e-3b1a-4c55-9d51-0c6f1d0e8a11",
    actor="0123456789abcdef",
    resource="customers/42",
    subject_ref=bytes(range(32)),
    fields=("email", "card"),
    purpose="support",
    request_id="req-1",
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    client="203.0.113.7",
    id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
    occurred_at=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
)


def test_covers_exactly_the_event_columns() -> None:
    # A new column needs a new format version, decided on purpose: this test makes it visible.
    assert CANONICAL_COLUMNS == COLUMNS


def _part(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_format_is_the_documented_one() -> None:
    """Changing these bytes breaks every chain sealed so far; a new label is the only way."""
    micros = int(EVENT.occurred_at.timestamp()) * 1_000_000 + EVENT.occurred_at.microsecond
    expected = b"".join(
        [
            _part(b"strongroom/audit-event/v1"),
            _part(EVENT.id.bytes),
            _part(struct.pack(">q", micros)),
            _part(b"\x01" + uuid.UUID(EVENT.tenant_id or "").bytes),
            _part(b"\x01" + b"0123456789abcdef"),
            _part(b"record.reveal"),
            _part(b"\x01" + b"customers/42"),
            _part(b"\x01" + bytes(range(32))),
            _part(struct.pack(">I", 2) + b"\x01" + _part(b"email") + b"\x01" + _part(b"card")),
            _part(b"\x01" + b"support"),
            _part(b"success"),
            _part(b"\x01" + b"req-1"),
            _part(b"\x01" + b"4bf92f3577b34da6a3ce929d0e0e4736"),
            _part(b"\x01" + b"203.0.113.7"),
        ]
    )
    canonical = canonical_event(EVENT)
    assert canonical == expected
    assert hashlib.sha256(canonical).hexdigest() == PINNED
    assert link_hash(GENESIS_HASH, canonical) == hashlib.sha256(bytes(32) + canonical).digest()
    absent = canonical_event(replace(EVENT, actor=None))
    assert _part(b"\x00") in absent


PINNED = "1b4c15b0dbdf66319c2894b692e7bb3f3d6abe0ecf92d6a822ad23a56f04badc"


def test_deterministic_and_same_from_event_or_row() -> None:
    assert canonical_event(EVENT) == canonical_event(replace(EVENT))
    record = dict(zip(COLUMNS, EVENT.as_row(), strict=True))
    record["fields"] = list(EVENT.fields)
    assert canonical_record(record) == canonical_event(EVENT)
    assert canonical_row(tuple(EVENT.as_row())) == canonical_event(EVENT)


def test_same_instant_in_any_offset_is_the_same_event() -> None:
    # PostgreSQL hands back timestamptz in UTC; the writer may have used another offset.
    shifted = EVENT.occurred_at.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert canonical_event(replace(EVENT, occurred_at=shifted)) == canonical_event(EVENT)
    later = EVENT.occurred_at + timedelta(microseconds=1)
    assert canonical_event(replace(EVENT, occurred_at=later)) != canonical_event(EVENT)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        timestamp_micros(datetime(2025, 1, 1))
    assert timestamp_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1


@pytest.mark.parametrize(
    "column", ["actor", "resource", "purpose", "request_id", "trace_id", "client"]
)
def test_null_is_not_empty(column: str) -> None:
    empty: dict[str, str | None] = {column: ""}
    absent: dict[str, str | None] = {column: None}
    assert canonical_event(replace(EVENT, **absent)) != canonical_event(  # type: ignore[arg-type]
        replace(EVENT, **empty)  # type: ignore[arg-type]
    )


def test_subject_ref_null_is_not_empty() -> None:
    assert canonical_event(replace(EVENT, subject_ref=None)) != canonical_event(
        replace(EVENT, subject_ref=b"")
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("a,b",), ("a", "b")),
        (("ab",), ("a", "b")),
        ((), ("",)),
        (("", ""), ("",)),
        (("a\x00",), ("a", "")),
    ],
)
def test_field_lists_do_not_collide(left: tuple[str, ...], right: tuple[str, ...]) -> None:
    assert canonical_event(replace(EVENT, fields=left)) != canonical_event(
        replace(EVENT, fields=right)
    )


def test_null_inside_a_field_list() -> None:
    row = list(EVENT.as_row())
    row[COLUMNS.index("fields")] = [None]
    other = list(row)
    other[COLUMNS.index("fields")] = [""]
    assert canonical_row(row) != canonical_row(other)


def test_text_does_not_shift_between_columns() -> None:
    one = replace(EVENT, actor="ab", resource="c")
    two = replace(EVENT, actor="a", resource="bc")
    assert canonical_event(one) != canonical_event(two)
    three = replace(EVENT, request_id="x", trace_id=None)
    four = replace(EVENT, request_id=None, trace_id="x")
    assert canonical_event(three) != canonical_event(four)


# Small alphabets and few ids and instants, so that equal events come up as often as near misses.
_short_text = st.text(alphabet="a,\x00|", max_size=3)
_optional_text = st.none() | _short_text
_events = st.builds(
    AuditEvent,
    action=_short_text,
    outcome=_short_text,
    tenant_id=st.none() | st.sampled_from([str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]),
    actor=_optional_text,
    resource=_optional_text,
    subject_ref=st.none() | st.binary(max_size=2),
    fields=st.lists(_short_text, max_size=3).map(tuple),
    purpose=_optional_text,
    request_id=_optional_text,
    trace_id=_optional_text,
    client=_optional_text,
    id=st.sampled_from([uuid.UUID(int=1), uuid.UUID(int=2)]),
    occurred_at=st.sampled_from([EVENT.occurred_at, EVENT.occurred_at + timedelta(microseconds=1)]),
)


@given(_events, _events)
def test_different_events_never_encode_alike(one: AuditEvent, two: AuditEvent) -> None:
    if canonical_event(one) == canonical_event(two):
        assert one.as_row() == two.as_row()
    else:
        assert one.as_row() != two.as_row()
