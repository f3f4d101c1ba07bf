"""Background work (audit batches, the sealer, listeners) makes no orphan root spans."""

from __future__ import annotations

import asyncpg
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from strongroom.observability.tracing import Tracing, untraced
from tests.conftest import Databases


def statements(exporter: InMemorySpanExporter) -> list[str]:
    """The statements this test ran that made spans (other tests' services in this process may
    still be running statements of their own)."""
    found = []
    for span in exporter.get_finished_spans():
        text = str((span.attributes or {}).get("db.statement", ""))
        if text in ("SELECT 1", "SELECT 2"):
            found.append(text)
    return found


async def test_statements_of_background_work_are_not_traced(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No collector here: the OTLP exporter gives up on its one span at once.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    tracing = Tracing.start("native")
    assert tracing is not None
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    connection = await asyncpg.connect(databases.data_url)
    try:
        await connection.fetchval("SELECT 1")
        assert statements(exporter) == ["SELECT 1"]  # the instrumentation is on

        async def background() -> int:
            return int(await connection.fetchval("SELECT 2"))

        assert await untraced(background()) == 2
        assert statements(exporter) == ["SELECT 1"]
    finally:
        await connection.close()
        await tracing.stop()
