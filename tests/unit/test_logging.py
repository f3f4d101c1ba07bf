"""The log pipeline cannot leak: every string is redacted before it is written."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from strongroom.http.context import request_id_var
from strongroom.observability import logging as structured
from strongroom.observability.logging import client_network, configure_logging
from strongroom.observability.middleware import RequestObserver
from strongroom.observability.tracing import drops_every_root

PLANTED = [
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "4111111111111111",
    "123-45-6789",
    "+1 415 555 0134",
    "DE89 3704 0044 0532 0130 00",
    "srk_0123456789abcdef_" + "A" * 43,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
]


@pytest.fixture(params=["json", "pretty"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("DEBUG", request.param, stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def assert_clean(output: str) -> None:
    assert output.strip(), "nothing was logged"
    for value in PLANTED:
        assert value not in output, value
    assert "[EMAIL]" in output


def test_messages_arguments_extras_and_exceptions_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("strongroom.test")
    log.info("customer %s paid with %s", PLANTED[0], PLANTED[1])
    log.warning(
        "lookup",
        extra={
            "query": {"email": PLANTED[0], "cards": [PLANTED[2]]},
            "ssn": PLANTED[3],
            "note": f"call {PLANTED[4]}",
        },
    )
    try:
        raise ValueError(f"bad iban {PLANTED[5]} for {PLANTED[0]} key {PLANTED[6]}")
    except ValueError:
        log.exception("failed with token %s", PLANTED[7])
    log.error(PLANTED[0])  # a message that is itself PII
    assert_clean(captured.getvalue())


def test_json_lines_carry_the_request_id(captured: io.StringIO) -> None:
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("strongroom.test").info("hello %s", PLANTED[0])
    finally:
        request_id_var.reset(token)
    line = captured.getvalue().strip().splitlines()[-1]
    if line.startswith("{"):
        record = orjson.loads(line)
        assert record["request_id"] == "req-42"
        assert record["message"] == "hello [EMAIL]"
        assert record["level"] == "INFO"
        assert record["logger"] == "strongroom.test"
    else:
        assert "hello [EMAIL]" in line
        assert "request_id=req-42" in line


def test_unformattable_messages_still_log(captured: io.StringIO) -> None:
    logging.getLogger("strongroom.test").info("broken %s %s", PLANTED[0])
    output = captured.getvalue()
    assert "unformattable" in output
    assert PLANTED[0] not in output


class _Request:
    def __init__(self, request_id: str | None, client_ip: str) -> None:
        self.request_id = request_id
        self.client_ip = client_ip


def test_access_lines_are_safe_and_alike_in_both_formats(captured: io.StringIO) -> None:
    # A caller may choose its request id: digits that form a card number are redacted too.
    request = _Request("4111111111111111", "203.0.113.77")
    RequestObserver._access_line(request, "GET", "/v1/x/{id}", 200, 0.0015, 42)  # type: ignore[arg-type]
    text = captured.getvalue()
    assert "4111111111111111" not in text
    assert "203.0.113.77" not in text
    assert "203.0.113.0/24" in text
    assert "GET /v1/x/{id} 200" in text
    if text.startswith("{"):
        line = orjson.loads(text)
        assert line["logger"] == "strongroom.access"
        assert (line["method"], line["route"], line["status"], line["bytes"]) == (
            "GET",
            "/v1/x/{id}",
            200,
            42,
        )
        assert line["duration_ms"] == 1.5
        assert line["request_id"] == "[CARD]"
        assert line["time"].endswith("+00:00")
        assert len(line["time"]) == 29


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("::ffff:10.1.2.3", "10.1.2.0/24"),
        ("not an address", "unknown"),
    ],
)
def test_the_client_is_logged_as_its_network(address: str, network: str) -> None:
    assert client_network(address) == network


def test_only_samplers_that_drop_every_root_skip_the_server_span() -> None:
    from opentelemetry.sdk.trace import sampling

    assert drops_every_root(sampling.ParentBased(sampling.TraceIdRatioBased(0)))
    assert drops_every_root(sampling.ALWAYS_OFF)
    assert drops_every_root(sampling.ParentBased(sampling.ALWAYS_OFF))
    assert not drops_every_root(sampling.ParentBased(sampling.TraceIdRatioBased(0.01)))
    assert not drops_every_root(sampling.ParentBased(sampling.ALWAYS_ON))
    assert not drops_every_root(sampling.TraceIdRatioBased(1.0))


class _SpanContext:
    is_valid = True
    trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
    span_id = 0x00F067AA0BA902B7


@pytest.mark.parametrize(
    "line",
    [
        ("GET", "/v1/x/{id}", 200, 0.0015, 42, "req-1", "203.0.113.77"),
        ("_OTHER", "*", 405, 1e-7, 0, None, "not an address"),
        ("POST", 'odd"route\\{x}', 500, 12.3456789, 7, "4111111111111111", "2001:db8::1"),
    ],
)
@pytest.mark.parametrize("span_context", [None, _SpanContext()])
def test_buffered_access_lines_are_what_the_formatter_writes(
    line: tuple[str, str, int, float, int, str | None, str], span_context: object
) -> None:
    # The buffered path builds its JSON by hand; it must say exactly what the LogRecord path
    # through JsonFormatter says, key for key and in the same order.
    message, access = structured.access_fields(*line)
    record = logging.makeLogRecord(
        {
            "name": "strongroom.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": message,
            "created": 1764180000.123456,
            "_access": access,
        }
    )
    if span_context is not None:
        ids = (f"{_SpanContext.trace_id:032x}", f"{_SpanContext.span_id:016x}")
        structured.trace_ids = lambda: ids
    try:
        expected = orjson.loads(structured.JsonFormatter().format(record))
    finally:
        structured.trace_ids = None
    built = orjson.loads(structured._json_line(1764180000.123456, line, span_context))
    assert list(built.items()) == list(expected.items())


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", "json", stream)
    yield stream
    structured.flush_access_lines()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _request_line(request_id: str = "r") -> None:
    RequestObserver._access_line(_Request(request_id, "10.0.0.1"), "GET", "/x", 200, 0.001, 1)  # type: ignore[arg-type]


def _loggers(stream: io.StringIO) -> list[str]:
    return [orjson.loads(line)["logger"] for line in stream.getvalue().splitlines()]


def test_queued_access_lines_are_written_together_after_the_delay(
    json_stream: io.StringIO,
) -> None:
    async def requests() -> tuple[str, str]:
        for _ in range(3):
            _request_line()
        await asyncio.sleep(0)
        after_the_turn = json_stream.getvalue()
        await asyncio.sleep(structured.ACCESS_FLUSH_DELAY * 1.5)
        return after_the_turn, json_stream.getvalue()

    after_the_turn, after_the_delay = asyncio.run(requests())
    assert after_the_turn == ""
    assert _loggers(json_stream) == ["strongroom.access"] * 3
    assert after_the_delay == json_stream.getvalue()


def test_a_full_buffer_of_access_lines_is_written_at_once(json_stream: io.StringIO) -> None:
    async def requests() -> tuple[int, int]:
        for _ in range(structured.ACCESS_BUFFER_LINES - 1):
            _request_line()
        before = len(json_stream.getvalue().splitlines())
        _request_line()
        return before, len(json_stream.getvalue().splitlines())

    assert asyncio.run(requests()) == (0, structured.ACCESS_BUFFER_LINES)


def test_queued_access_lines_come_before_a_later_record(json_stream: io.StringIO) -> None:
    async def requests() -> None:
        _request_line("first")
        logging.getLogger("strongroom.test").warning("after the request")
        _request_line("second")

    asyncio.run(requests())
    structured.flush_access_lines()  # as the application does when it stops
    lines = [orjson.loads(line) for line in json_stream.getvalue().splitlines()]
    assert [line.get("request_id") for line in lines] == ["first", None, "second"]
    assert lines[1]["message"] == "after the request"


@pytest.mark.parametrize(
    "now", [1764180000.123456, 1764180000.1239, 1764180000.9999, 1764180001.0, 0.0005]
)
def test_access_line_times_are_the_formatters(now: float) -> None:
    # Cached by the second and the millisecond; the same text as every other line, twice over.
    expected = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    assert structured._time(now) == expected
    assert structured._time(now) == expected
