"""Structured logging: one JSON line per record on stdout (pretty in a dev terminal), with the
request id, and every string redacted by the PII scanner before it is written.

Access lines are the exception to "every string": their fields are made safe where they are
built (an allow-listed method, the route template, numbers, a redacted request id and the
client's network rather than its address) and travel as one ``_access`` mapping that the
formatters copy as is. In JSON they are written straight to the handler's stream, which costs a
few microseconds instead of a LogRecord's tens, once per request."""

from __future__ import annotations

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


def _now() -> str:
    """The time as the formatter writes it (ISO 8601, milliseconds, UTC), formatting the date
    once a second rather than once a line."""
    global _second
    now = time.time()
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}+00:00"


def write_access(name: str, message: str, access: dict[str, Any]) -> bool:
    """Write an access line straight to the JSON handler :func:`configure_logging` installed,
    in the shape :class:`JsonFormatter` gives it; False (nothing written) when that handler is
    not the root's any more, or the format is not JSON: the caller logs the usual way then."""
    handler = _json_handler
    if handler is None or handler not in logging.getLogger().handlers:
        return False
    fields: dict[str, Any] = {
        "time": _now(),
        "level": "INFO",
        "logger": name,
        "message": message,
    }
    _add_trace_ids(fields)
    fields.update(access)
    line = orjson.dumps(fields).decode() + handler.terminator
    handler.acquire()
    try:
        handler.stream.write(line)
        handler.flush()
    except Exception:  # as StreamHandler.emit: a broken stream must not fail the request
        handler.handleError(logging.makeLogRecord({"msg": message}))
    finally:
        handler.release()
    return True


def configure_logging(level: str, fmt: str, stream: Any = None) -> None:
    """Route the root logger (and the server's) to ``stream`` (stdout by default) through the
    redacting formatter."""
    global _json_handler
    handler = logging.StreamHandler(stream or sys.stdout)
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
