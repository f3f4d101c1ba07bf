"""Reading the audit trail: filters, cursor-paged search, streamed export, report figures.

Everything is scoped to one tenant. Subjects are searched by their pseudonym, computed from the
subject id the caller gives; the trail itself never holds the id.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from strongroom.audit.events import ACTIONS
from strongroom.domain.errors import BadRequest, FieldError, ValidationFailed

OUTCOMES = ("success", "denied", "failure")
FILTERS = ("actor", "action", "resource", "subject", "purpose", "outcome", "since", "until")
EXPORT_FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "id",
    "seq",
    "occurred_at",
    "tenant_id",
    "actor",
    "action",
    "resource",
    "subject",
    "fields",
    "purpose",
    "outcome",
    "request_id",
    "trace_id",
    "client",
)
_SELECT = (
    "SELECT id, seq, occurred_at, tenant_id, actor, action, resource, subject_ref, fields, "
    "purpose, outcome, request_id, trace_id, client FROM audit_events"
)
_MAX_TEXT = 512


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A parsed, validated audit query. ``action`` and ``resource`` accept a trailing ``*``."""

    tenant_id: str
    actor: str | None = None
    action: str | None = None
    resource: str | None = None
    subject_ref: bytes | None = None
    purpose: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, first_parameter: int = 1) -> tuple[str, list[Any]]:
        """A WHERE clause and its bound arguments (values are never spliced into SQL)."""
        clauses = [f"tenant_id = ${first_parameter}"]
        arguments: list[Any] = [uuid.UUID(self.tenant_id)]

        def bind(value: Any) -> str:
            arguments.append(value)
            return f"${first_parameter + len(arguments) - 1}"

        for column, value in (
            ("actor", self.actor),
            ("purpose", self.purpose),
            ("outcome", self.outcome),
        ):
            if value is not None:
                clauses.append(f"{column} = {bind(value)}")
        for column, value in (("action", self.action), ("resource", self.resource)):
            if value is None:
                continue
            if value.endswith("*"):
                prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                clauses.append(f"{column} LIKE {bind(prefix + '%')}")
            else:
                clauses.append(f"{column} = {bind(value)}")
        if self.subject_ref is not None:
            clauses.append(f"subject_ref = {bind(self.subject_ref)}")
        if self.since is not None:
            clauses.append(f"occurred_at >= {bind(self.since)}")
        if self.until is not None:
            clauses.append(f"occurred_at < {bind(self.until)}")
        return " AND ".join(clauses), arguments


def parse_filter(
    tenant_id: str,
    query: Mapping[str, list[str]],
    subject_ref_of: Any,
    extra: tuple[str, ...] = (),
) -> EventFilter:
    """Validate query parameters; ``subject_ref_of(subject_id)`` pseudonymises a subject."""
    errors: list[FieldError] = []
    values: dict[str, str] = {}
    for name, given in query.items():
        if name in extra:
            continue
        if name not in FILTERS:
            errors.append(FieldError(f"?{name}", f"unknown filter; use {', '.join(FILTERS)}"))
            continue
        if len(given) != 1:
            errors.append(FieldError(f"?{name}", "give each filter once"))
            continue
        value = given[0]
        if not value or len(value) > _MAX_TEXT or not value.isprintable():
            errors.append(FieldError(f"?{name}", f"1 to {_MAX_TEXT} printable characters"))
            continue
        values[name] = value
    action = values.get("action")
    if action is not None and not action.endswith("*") and action not in ACTIONS:
        errors.append(FieldError("?action", "unknown action (a trailing * matches a prefix)"))
    outcome = values.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        errors.append(FieldError("?outcome", f"one of {', '.join(OUTCOMES)}"))
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        times[name] = None
        if name in values:
            try:
                parsed = datetime.fromisoformat(values[name].replace("Z", "+00:00"))
            except ValueError:
                errors.append(FieldError(f"?{name}", "an ISO 8601 time, e.g. 2026-01-31T00:00Z"))
                continue
            if parsed.tzinfo is None:
                errors.append(FieldError(f"?{name}", "include a time zone (Z or +hh:mm)"))
                continue
            times[name] = parsed
    since, until = times["since"], times["until"]
    if since is not None and until is not None and since >= until:
        errors.append(FieldError("?until", "must be after since"))
    if errors:
        raise ValidationFailed("invalid audit query", errors)
    subject = values.get("subject")
    return EventFilter(
        tenant_id=tenant_id,
        actor=values.get("actor"),
        action=action,
        resource=values.get("resource"),
        subject_ref=subject_ref_of(subject) if subject is not None else None,
        purpose=values.get("purpose"),
        outcome=outcome,
        since=since,
        until=until,
    )


def event_json(row: asyncpg.Record) -> dict[str, Any]:
    """An event as the API shows it: the subject only as its pseudonym."""
    subject = row["subject_ref"]
    return {
        "id": str(row["id"]),
        "seq": row["seq"],
        "occurred_at": row["occurred_at"],
        "tenant_id": str(row["tenant_id"]) if row["tenant_id"] else None,
        "actor": row["actor"],
        "action": row["action"],
        "resource": row["resource"],
        "subject": bytes(subject).hex() if subject is not None else None,
        "fields": list(row["fields"]),
        "purpose": row["purpose"],
        "outcome": row["outcome"],
        "request_id": row["request_id"],
        "trace_id": row["trace_id"],
        "client": row["client"],
    }


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": seq})).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = payload["before"]
        if isinstance(before, bool) or not isinstance(before, int) or not 0 < before < 2**63:
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("the cursor is not one this service issued") from None
    return before


async def search(
    pool: asyncpg.Pool, where: EventFilter, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; ``next_cursor`` continues with older events."""
    clause, arguments = where.where()
    if before is not None:
        arguments.append(before)
        clause += f" AND seq < ${len(arguments)}"
    arguments.append(limit + 1)
    rows = await pool.fetch(
        f"{_SELECT} WHERE {clause} ORDER BY seq DESC LIMIT ${len(arguments)}", *arguments
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(rows[-1]["seq"]) if more and rows else None
    return [event_json(row) for row in rows], cursor


EXPORT_IDLE_SECONDS = 300
EXPORT_FETCH_SECONDS = 60


async def stream_export(
    pool: asyncpg.Pool, where: EventFilter, fmt: str, batch: int = 2_000
) -> AsyncIterator[bytes]:
    """Oldest first, read through a server-side cursor so memory stays flat at any size.

    The pool's limits are meant for requests, not for a bulk read: the cursor's transaction may
    idle up to :data:`EXPORT_IDLE_SECONDS` while a slow client drains what was sent, and one
    fetch may take up to :data:`EXPORT_FETCH_SECONDS` (a narrow filter over a long trail scans
    many rows to find a batch)."""
    clause, arguments = where.where()
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        await connection.execute(
            f"SET LOCAL idle_in_transaction_session_timeout = '{EXPORT_IDLE_SECONDS}s'; "
            f"SET LOCAL statement_timeout = '{EXPORT_FETCH_SECONDS}s'"
        )
        if fmt == "csv":
            yield _csv_line(CSV_COLUMNS)
        cursor = connection.cursor(
            f"{_SELECT} WHERE {clause} ORDER BY seq",
            *arguments,
            prefetch=batch,
            timeout=EXPORT_FETCH_SECONDS,
        )
        chunk: list[bytes] = []
        async for row in cursor:
            event = event_json(row)
            if fmt == "jsonl":
                chunk.append(orjson.dumps(event) + b"\n")
            else:
                chunk.append(_csv_line(_csv_values(event)))
            if len(chunk) >= batch:
                yield b"".join(chunk)
                chunk.clear()
        if chunk:
            yield b"".join(chunk)


def _csv_values(event: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for column in CSV_COLUMNS:
        value = event[column]
        if value is None:
            values.append("")
        elif column == "fields":
            values.append(orjson.dumps(value).decode())
        elif isinstance(value, datetime):
            values.append(value.isoformat())
        else:
            values.append(str(value))
    return values


def _csv_line(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


async def report_figures(
    pool: asyncpg.Pool, tenant_id: str, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Counts for the compliance report, in the given window."""
    where = EventFilter(tenant_id=tenant_id, since=since, until=until)
    clause, arguments = where.where()
    async with pool.acquire() as connection:
        reveals = await connection.fetch(
            f"SELECT actor, purpose, count(*) AS n, max(occurred_at) AS last FROM audit_events "
            f"WHERE {clause} AND action = 'record.reveal' AND outcome = 'success' "
            "GROUP BY actor, purpose ORDER BY n DESC, actor, purpose",
            *arguments,
        )
        by_action = await connection.fetch(
            f"SELECT action, outcome, count(*) AS n FROM audit_events WHERE {clause} "
            "GROUP BY action, outcome ORDER BY action, outcome",
            *arguments,
        )
        span = await connection.fetchrow(
            f"SELECT min(occurred_at) AS first, max(occurred_at) AS last, count(*) AS n "
            f"FROM audit_events WHERE {clause}",
            *arguments,
        )
    counts: dict[str, dict[str, int]] = {}
    for row in by_action:
        counts.setdefault(row["action"], {})[row["outcome"]] = row["n"]

    def total(action: str, outcome: str | None = None) -> int:
        found = counts.get(action, {})
        return found.get(outcome, 0) if outcome else sum(found.values())

    assert span is not None
    return {
        "events": span["n"],
        "first_event_at": span["first"],
        "last_event_at": span["last"],
        "reveals_by_actor_and_purpose": [
            {"actor": r["actor"], "purpose": r["purpose"], "count": r["n"], "last": r["last"]}
            for r in reveals
        ],
        "subject_exports": total("subject.export", "success"),
        "audit_exports": total("audit.export", "success"),
        "erasures": total("subject.erase", "success"),
        "key_rotations": total("key.rotate", "success"),
        "denied_requests": {
            "authentication": total("auth.denied"),
            "rate_limited": total("ratelimit.exceeded"),
        },
        "events_by_action": counts,
    }
