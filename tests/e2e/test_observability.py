"""Traces and logs of the service under Granian: spans arrive over OTLP/HTTP at a receiver in
this test; the access line carries the request id of the response and the trace id of the span;
planted PII reaches neither."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from strongroom.domain.access import generate_api_key
from strongroom.store.tenants import TenantRepository
from tests.conftest import Databases, Servers

pytestmark = pytest.mark.e2e

SUBJECT = "jane.roe@example.com"  # a subject id that is itself PII
EMAIL = "jane.roe@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "+1 415 555 0177"
PLANTED = (SUBJECT, EMAIL, CARD, "4111111111111111", PHONE, "jane.roe")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Receiver:
    """A tiny OTLP/HTTP trace receiver: POST /v1/traces, protobuf, spans kept in memory."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    with receiver._lock:
                        for resource in request.resource_spans:
                            for scope in resource.scope_spans:
                                receiver.spans.extend(scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def trace(self, trace_id: str) -> list[Any]:
        with self._lock:
            return [s for s in self.spans if s.trace_id.hex() == trace_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


def attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind else None
    return out


async def admin_key(databases: Databases) -> tuple[str, str]:
    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        tenants = TenantRepository(pool)
        name = "obs-" + generate_api_key().key_id
        tenant = await tenants.create(name, ("support",))
        key = generate_api_key()
        await tenants.add_api_key(name, key.key_id, key.secret_hash, frozenset({"admin"}), "e2e")
    finally:
        await pool.close()
    return key.token, tenant.id


async def test_reveal_trace_and_access_line_over_otlp(
    server_factory,  # type: ignore[no-untyped-def]
    receiver: Receiver,
    databases: Databases,
    servers: Servers,
    master_key: str,
) -> None:
    token, _ = await admin_key(databases)
    server = server_factory(
        {
            "STRONGROOM_ENV": "production",
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_MASTER_KEY": master_key,
            "STRONGROOM_LOG_LEVEL": "INFO",
            "STRONGROOM_TRACING": "on",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "strongroom-e2e",
        }
    )
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "support", "X-Note": CARD}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        schema = {
            "fields": {
                "email": {"type": "email"},
                "card": {"type": "card"},
                "phone": {"type": "phone"},
            }
        }
        assert (await client.put("/v1/collections/people", json=schema)).status_code == 201
        created = await client.post(
            "/v1/collections/people/records",
            json={"subject_id": SUBJECT, "data": {"email": EMAIL, "card": CARD, "phone": PHONE}},
        )
        assert created.status_code == 201, created.text
        revealed = await client.get(
            created.headers["location"],
            params={"reveal": "email,card"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert revealed.status_code == 200, revealed.text
        assert revealed.json()["data"]["email"] == EMAIL
        # PII in the path and the query: neither reaches a span or a line.
        exported = await client.get(f"/v1/subjects/{SUBJECT}/export", params={"why": EMAIL})
        assert exported.status_code == 200, exported.text

    # The response names the trace it belongs to.
    traceresponse = revealed.headers["traceresponse"]
    assert traceresponse.startswith(f"00-{TRACE_ID}-")

    deadline = time.monotonic() + 20
    spans: list[Any] = []
    while time.monotonic() < deadline:
        spans = receiver.trace(TRACE_ID)
        # The export is another trace and may leave in a later batch: wait for it too.
        exported_span = any(
            s.name == "GET /v1/subjects/{subject_id}/export" for s in receiver.spans
        )
        if (
            any(s.name == "audit.flush" for s in spans)
            and any(s.parent_span_id.hex() == PARENT_ID for s in spans)
            and exported_span
        ):
            break
        await asyncio.sleep(0.2)
    by_id = {s.span_id.hex(): s for s in spans}
    servers_ = [s for s in spans if s.parent_span_id.hex() == PARENT_ID]
    assert len(servers_) == 1, [s.name for s in spans]
    root = servers_[0]
    assert root.name == "GET /v1/collections/{name}/records/{record_id}"
    assert root.kind == root.SPAN_KIND_SERVER
    root_attributes = attributes(root)
    assert root_attributes["http.route"] == "/v1/collections/{name}/records/{record_id}"
    assert root_attributes["http.request.method"] == "GET"
    assert root_attributes["http.response.status_code"] == 200
    assert traceresponse == f"00-{TRACE_ID}-{root.span_id.hex()}-01"

    children = [s for s in spans if s.parent_span_id.hex() == root.span_id.hex()]
    database = [
        s
        for s in children
        if attributes(s).get("db.system") == "postgresql"
        or attributes(s).get("db.system.name") == "postgresql"
    ]
    assert database, [s.name for s in children]
    assert all(s.kind == s.SPAN_KIND_CLIENT for s in database)
    flush = [s for s in children if s.name == "audit.flush"]
    assert len(flush) == 1
    assert attributes(flush[0])["strongroom.audit.action"] == "record.reveal"
    # The flush is the last step: the reply waits for the durable event.
    assert flush[0].end_time_unix_nano >= max(s.end_time_unix_nano for s in database)
    assert all(by_id.get(s.parent_span_id.hex()) is not None or s is root for s in spans)

    # No span (of any trace) carries the planted PII, the raw path or the query.
    record_id = created.headers["location"].rsplit("/", 1)[-1]
    every = receiver.spans
    assert any(s.name == "GET /v1/subjects/{subject_id}/export" for s in every)
    for span in every:
        text = span.name + " " + repr(attributes(span))
        for value in (*PLANTED, record_id, "reveal=", "why="):
            assert value not in text, (value, span.name)

    # The access line: the response's request id, the server span's trace and span ids.
    server.stop()
    log = server.log()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "strongroom.access"]
    mine = [line for line in access if line["request_id"] == revealed.headers["x-request-id"]]
    assert len(mine) == 1, access
    assert mine[0]["trace_id"] == TRACE_ID
    assert mine[0]["span_id"] == root.span_id.hex()
    assert mine[0]["route"] == "/v1/collections/{name}/records/{record_id}"
    assert mine[0]["status"] == 200
    for value in (*PLANTED, record_id):
        assert value not in log, value
