"""Structured logging: one JSON line per record on stdout (pretty in a dev terminal), with the
request id, and every string redacted by the PII scanner before it is written.

Access lines are the exception to "every string": their fields are made safe where they are
built (an allow-listed method, the route template, numbers, a redacted request id and the
client's network rather than its address) and travel as one ``_access`` mapping that the
formatters copy as is. In JSON they skip the LogRecord (tens of microseconds) and are buffered,
as nginx's ``access_log ... buffer= flush=``: queued lines are formatted together and written in
one write when :data:`ACCESS_BUFFER_LINES` are waiting or :data:`ACCESS_FLUSH_DELAY` after the
first of them, whichever comes first, and before any other record the handler writes (so the
output keeps its order), at application stop and at exit. A request then costs a few
microseconds of formatting instead of a write(2) and a flush of its own: on a busy server most
event-loop turns carry a single request. A process killed outright loses at most that delay's
access lines; the audit trail, not the access log, is the record that must not lose anything.
Outside an event loop a line is written at once."""

from __future__ import annotations

import asyncio
import atexit
import functools
import ipaddress
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom import privacy
from strongroom.http.context import request_id_var

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is emitted too.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

ACCESS_LOGGER = "strongroom.access"

# Set by tracing when it is on: the current (trace id, span id), or None outside a span.
trace_ids: Callable[[], tuple[str, str] | None] | None = None


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return privacy.redact_text(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {privacy.redact_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return privacy.redact_text(repr(value))


def _add_trace_ids(fields: dict[str, Any]) -> None:
    if trace_ids is not None:
        ids = trace_ids()
        if ids is not None:
            fields["trace_id"], fields["span_id"] = ids


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not lose the line
        message = f"{record.msg!r} (unformattable arguments)"
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": privacy.redact_text(message),
    }
    request_id = request_id_var.get()
    if request_id is not None:
        fields["request_id"] = request_id
    _add_trace_ids(fields)
    attributes = record.__dict__
    access = attributes.get("_access")
    if access is not None:
        fields.update(access)
    for key in attributes.keys() - _STANDARD:  # what ``extra=`` added (a set difference in C)
        if not key.startswith("_"):
            fields[key] = _clean(attributes[key])
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info))
        fields["exception"] = privacy.redact_text(text)
    elif record.exc_text:
        fields["exception"] = privacy.redact_text(record.exc_text)
    if record.stack_info:
        fields["stack"] = privacy.redact_text(record.stack_info)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(record), default=str).decode()


class PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        head = f"{fields.pop('time')[11:23]} {fields.pop('level'):<7} {fields.pop('logger')}: "
        line = head + str(fields.pop("message"))
        exception = fields.pop("exception", None)
        if fields:
            line += "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line + ("\n" + str(exception) if exception else "")


_json_handler: logging.StreamHandler[Any] | None = None
_second: tuple[int, str] = (0, "")
_millisecond: tuple[tuple[int, int], str] = ((0, 0), "")


def _time(now: float) -> str:
    """``now`` as the formatter writes it (ISO 8601, milliseconds, UTC), formatting the date
    once a second rather than once a line, and the line once a millisecond."""
    global _second, _millisecond
    whole = int(now)
    millis = int((now - whole) * 1000)
    if (whole, millis) == _millisecond[0]:
        return _millisecond[1]
    if whole != _second[0]:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    text = f"{_second[1]}.{millis:03d}+00:00"
    _millisecond = ((whole, millis), text)
    return text


@functools.lru_cache(maxsize=4096)
def client_network(address: str) -> str:
    """The client's network for the access line, not its address (an IP address is personal
    data): IPv4 to /24 and IPv6 to /48, as analytics tools anonymise them."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def access_fields(
    method: str,
    route: str,
    status: int,
    elapsed: float,
    sent: int,
    request_id: str | None,
    client: str,
) -> tuple[str, dict[str, Any]]:
    """An access line's message and fields, safe as they are: ``method`` is allow-listed by the
    caller, ``route`` a template, the rest numbers, the client's network and the request id
    through the redactor (a caller chooses it from a safe alphabet, but it could be digits)."""
    return f"{method} {route} {status}", {
        "request_id": privacy.redact_text(request_id) if request_id else None,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "bytes": sent,
        "client": client_network(client),
    }


ACCESS_BUFFER_LINES = 128
"""Access lines written together at most (about 40 KiB)."""
ACCESS_FLUSH_DELAY = 0.1
"""Seconds an access line waits at most before it is written."""

# Access lines waiting to be written: the time, access_fields' arguments and the request's span
# context (or None).
_Line = tuple[str, str, int, float, int, str | None, str]
_pending: list[tuple[float, _Line, Any]] = []
_pending_handler: logging.StreamHandler[Any] | None = None
_flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
_flush_timer: asyncio.TimerHandle | None = None


def write_access(
    method: str,
    route: str,
    status: int,
    elapsed: float,
    sent: int,
    request_id: str | None,
    client: str,
    span_context: Any = None,
) -> bool:
    """Queue an access line for the JSON handler :func:`configure_logging` installed, in the
    shape :class:`JsonFormatter` gives it, with the ids of ``span_context`` when it is a valid
    one; False (nothing queued) when that handler is not the root's any more, or the format is
    not JSON: the caller logs the usual way then. The line is built when it is written."""
    global _flush_on, _flush_timer, _pending_handler
    handler = _json_handler
    if handler is None or handler not in logging.root.handlers:
        return False
    if handler is not _pending_handler:
        flush_access_lines()  # lines queued for a handler since replaced go to that one
    _pending.append(
        (time.time(), (method, route, status, elapsed, sent, request_id, client), span_context)
    )
    _pending_handler = handler
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush_access_lines()
        return True
    if len(_pending) >= ACCESS_BUFFER_LINES:
        flush_access_lines()
    elif _flush_on is not loop:  # not scheduled yet, or on a loop that ended before running it
        _flush_timer = loop.call_later(ACCESS_FLUSH_DELAY, flush_access_lines)
        _flush_on = loop
    return True


@functools.lru_cache(maxsize=1024)
def _json_head(method: str, route: str, status: int) -> tuple[str, str]:
    """The JSON of an access line's message, and of its method, route and status fields."""
    message = orjson.dumps(f"{method} {route} {status}").decode()
    fields = f'"method":{orjson.dumps(method).decode()},"route":{orjson.dumps(route).decode()}'
    return message, f'{fields},"status":{status}'


def _json_line(now: float, line: _Line, span_context: Any) -> str:
    """The line :class:`JsonFormatter` makes of :func:`access_fields`, key for key, built as
    one string (a dictionary and its encoding cost several times more, once per request)."""
    method, route, status, elapsed, sent, request_id, client = line
    message, head = _json_head(method, route, status)
    ids = ""
    if span_context is not None and span_context.is_valid:
        ids = f',"trace_id":"{span_context.trace_id:032x}","span_id":"{span_context.span_id:016x}"'
    safe_id = orjson.dumps(privacy.redact_text(request_id)).decode() if request_id else "null"
    return (
        f'{{"time":"{_time(now)}","level":"INFO","logger":"{ACCESS_LOGGER}","message":{message}'
        f'{ids},"request_id":{safe_id},{head},"duration_ms":{elapsed * 1000:.3f},'
        f'"bytes":{sent},"client":"{client_network(client)}"}}'
    )


def flush_access_lines() -> None:
    """Write the queued access lines now, in one write."""
    global _flush_on, _flush_timer
    if _flush_timer is not None:
        _flush_timer.cancel()  # a no-op when it is the timer calling
        _flush_timer = None
    _flush_on = None
    handler = _pending_handler
    if not _pending or handler is None:
        return
    lines = [_json_line(now, line, span_context) for now, line, span_context in _pending]
    _pending.clear()
    text = handler.terminator.join(lines) + handler.terminator
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    except Exception:  # as StreamHandler.emit: a broken stream must not fail a request
        handler.handleError(logging.makeLogRecord({"msg": "access lines"}))
    finally:
        handler.release()


atexit.register(flush_access_lines)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """A stream handler that writes the queued access lines before a record of its own, so the
    output stays in the order things happened."""

    def emit(self, record: logging.LogRecord) -> None:
        if _pending:
            flush_access_lines()
        super().emit(record)


def configure_logging(level: str, fmt: str, stream: Any = None) -> None:
    """Route the root logger (and the server's) to ``stream`` (stdout by default) through the
    redacting formatter."""
    global _json_handler
    flush_access_lines()
    handler = _Handler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PrettyFormatter())
    _json_handler = handler if fmt == "json" else None
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("granian", "granian.access", "blacksheep.server", "_granian"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
