"""PostgreSQL and Redis spans: made for the statements and commands of a sampled request, with
the statement or the command's name and no value, and never for background work (audit batches,
the sealer, listeners), which would make orphan root spans."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from strongroom.observability.tracing import Tracing, recording, untraced
from tests.conftest import Databases, Servers

MARKERS = ("SELECT 1", "SELECT 2", "SELECT $1::text", "SELECT 1/0")


def statements(exporter: InMemorySpanExporter) -> list[str]:
    """The statements this test ran that made spans (other tests' services in this process may
    still be running statements of their own)."""
    found = []
    for span in exporter.get_finished_spans():
        text = str((span.attributes or {}).get("db.statement", ""))
        if text in MARKERS:
            found.append(text)
    return found


@pytest.fixture
async def traced(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Tracing, InMemorySpanExporter, asyncpg.Connection]]:
    # No collector here: the OTLP exporter gives up on its spans at once.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    tracing = Tracing.start("native")
    assert tracing is not None
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    connection = await asyncpg.connect(databases.data_url)
    try:
        yield tracing, exporter, connection
    finally:
        await connection.close()
        await tracing.stop()


async def test_statements_of_a_sampled_request_are_child_spans(
    traced: tuple[Tracing, InMemorySpanExporter, asyncpg.Connection],
) -> None:
    tracing, exporter, connection = traced
    with tracing.tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER) as server:
        marked = recording.set(True)  # what the request hook sets for a recorded request
        try:
            assert await connection.fetchval("SELECT $1::text", "jane.doe@example.com") == (
                "jane.doe@example.com"
            )
            with pytest.raises(asyncpg.DivisionByZeroError):
                await connection.execute("SELECT 1/0")
            assert await connection.fetchval(query="SELECT 2") == 2  # the statement by keyword
        finally:
            recording.reset(marked)
    spans = {
        str((s.attributes or {}).get("db.statement")): s for s in exporter.get_finished_spans()
    }
    assert spans["SELECT 2"].name == "SELECT"
    selected, failed = spans["SELECT $1::text"], spans["SELECT 1/0"]
    for span in (selected, failed):
        assert span.name == "SELECT"
        assert span.kind == SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == server.get_span_context().span_id
        attributes = dict(span.attributes or {})
        assert attributes["db.system"] == "postgresql"
        assert attributes["db.name"] == connection._params.database
        assert "net.peer.name" in attributes
        # The bound value is nowhere: not in an attribute, not in an event.
        assert "jane.doe@example.com" not in repr(attributes) + repr(span.events)
    assert selected.status.status_code == StatusCode.UNSET
    assert failed.status.status_code == StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "DivisionByZeroError"
    assert not failed.events  # the error's message is not recorded


async def test_statements_outside_a_sampled_request_make_no_span(
    traced: tuple[Tracing, InMemorySpanExporter, asyncpg.Connection],
) -> None:
    _, exporter, connection = traced

    async def background() -> int:
        return int(await connection.fetchval("SELECT 2"))

    marked = recording.set(True)
    try:
        # A task started by a sampled request inherits its context; untraced() cuts it off.
        assert await untraced(background()) == 2
    finally:
        recording.reset(marked)
    assert await connection.fetchval("SELECT 1") == 1  # no request at all
    assert statements(exporter) == []


async def test_stopping_tracing_restores_asyncpg(
    traced: tuple[Tracing, InMemorySpanExporter, asyncpg.Connection],
) -> None:
    tracing, _, _ = traced
    assert asyncpg.connection.Connection.fetchval.__wrapped__ is not None  # type: ignore[attr-defined]
    await tracing.stop()
    assert not hasattr(asyncpg.connection.Connection.fetchval, "__wrapped__")


@pytest.fixture
async def redis_client(servers: Servers) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(servers.redis_url)
    try:
        yield client
    finally:
        await client.delete("strongroom-test:span")
        await client.aclose()


def redis_spans(exporter: InMemorySpanExporter) -> list[object]:
    return [
        s for s in exporter.get_finished_spans() if (s.attributes or {}).get("db.system") == "redis"
    ]


async def test_redis_commands_of_a_sampled_request_are_child_spans_without_arguments(
    traced: tuple[Tracing, InMemorySpanExporter, asyncpg.Connection],
    redis_client: aioredis.Redis,
) -> None:
    tracing, exporter, _ = traced
    with tracing.tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER) as server:
        marked = recording.set(True)
        try:
            await redis_client.set("strongroom-test:span", "jane.doe@example.com")
            with pytest.raises(aioredis.ResponseError):
                await redis_client.incr("strongroom-test:span")  # not a number
        finally:
            recording.reset(marked)
    spans = redis_spans(exporter)
    assert [s.name for s in spans] == ["SET", "INCRBY"]  # type: ignore[attr-defined]
    for span in spans:
        assert span.kind == SpanKind.CLIENT  # type: ignore[attr-defined]
        assert span.parent.span_id == server.get_span_context().span_id  # type: ignore[attr-defined]
        attributes = dict(span.attributes or {})  # type: ignore[attr-defined]
        assert attributes["db.operation"] == span.name  # type: ignore[attr-defined]
        assert "net.peer.name" in attributes
        # Neither the key nor the value: only the command's name.
        text = repr(attributes) + repr(span.events)  # type: ignore[attr-defined]
        assert "jane.doe@example.com" not in text
        assert "strongroom-test:span" not in text
    failed = spans[1]
    assert failed.status.status_code == StatusCode.ERROR  # type: ignore[attr-defined]
    assert dict(failed.attributes or {})["error.type"] == "ResponseError"  # type: ignore[attr-defined]
    assert not failed.events  # type: ignore[attr-defined]


async def test_redis_commands_outside_a_sampled_request_make_no_span(
    traced: tuple[Tracing, InMemorySpanExporter, asyncpg.Connection],
    redis_client: aioredis.Redis,
) -> None:
    _, exporter, _ = traced
    await redis_client.set("strongroom-test:span", "1")  # no request at all

    async def background() -> object:
        return await redis_client.get("strongroom-test:span")

    marked = recording.set(True)
    try:
        assert await untraced(background()) == b"1"
    finally:
        recording.reset(marked)
    assert redis_spans(exporter) == []


async def test_stopping_tracing_restores_redis(
    traced: tuple[Tracing, InMemorySpanExporter, asyncpg.Connection],
) -> None:
    tracing, _, _ = traced
    assert aioredis.Redis.execute_command.__wrapped__ is not None  # type: ignore[attr-defined]
    await tracing.stop()
    assert not hasattr(aioredis.Redis.execute_command, "__wrapped__")
