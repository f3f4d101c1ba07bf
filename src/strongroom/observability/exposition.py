"""Where Prometheus scrapes: ``GET /metrics`` on the API port, or a port of its own.

A separate port (``STRONGROOM_METRICS_PORT``) keeps metrics off the public listener. Every worker
listens on it with ``SO_REUSEPORT``; the kernel hands each scrape to one of them, and in
multiprocess mode any worker answers for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from blacksheep import Content, Request, Response

from strongroom.http.routing import Endpoint, RouteTable
from strongroom.observability.metrics import Metrics

log = logging.getLogger("strongroom.metrics")

_MAX_REQUEST = 8192


def install(table: RouteTable, metrics: Metrics) -> None:
    content_type = metrics.content_type.encode()

    async def scrape(request: Request) -> Response:
        return Response(200, content=Content(content_type, await metrics.render()))

    table.add(
        Endpoint(
            "GET",
            "/metrics",
            scrape,
            "Prometheus metrics (text exposition format)",
            "probes",
            responses={200: "The metrics"},
            media_type="text/plain",
        )
    )


class MetricsServer:
    """A minimal HTTP/1.1 listener answering ``GET /metrics`` (anything else: 404)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, reuse_port=True
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > _MAX_REQUEST:
                    return
                method, _, rest = head.partition(b" ")
                path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
                if method in (b"GET", b"HEAD") and path == b"/metrics":
                    body = await self._metrics.render()
                    status, content_type = b"200 OK", self._metrics.content_type.encode()
                else:
                    body, status, content_type = b"not found\n", b"404 Not Found", b"text/plain"
                writer.write(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\nContent-Type: "
                    + content_type
                    + b"\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                    + (body if method != b"HEAD" else b"")
                )
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
