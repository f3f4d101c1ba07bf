"""A closed-loop HTTP/1.1 load generator on raw asyncio protocols, with per-request latencies.

Each of ``connections`` keep-alive connections sends one request, waits for the whole answer
(``Content-Length`` or chunked), records the latency and sends the next, until the time is up.
Requests are prebuilt bytes (or built by a callable, e.g. a POST with a fresh body each time), so
the generator spends a few microseconds of CPU per request; ``LoadResult.client_cpu`` tells
whether it came near a full core (then it, not the server, would be the bottleneck).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

RequestSource = Callable[[], bytes]


@dataclass
class LoadResult:
    seconds: float
    client_cpu: float  # CPU seconds this process spent during the window
    latencies: list[float] = field(default_factory=list)  # seconds, one per completed request
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0  # answers whose status was not the expected one

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0-100) of the latencies in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000


def cycle(requests: Iterable[bytes]) -> RequestSource:
    """A source that hands out ``requests`` round-robin."""
    return itertools.cycle(list(requests)).__next__


def http_request(
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive; ``Content-Length`` when there is a body)."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    def __init__(
        self, source: RequestSource, expect: int, deadline: float, result: LoadResult
    ) -> None:
        self.source = source
        self.expect = expect
        self.deadline = deadline
        self.result = result
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.source())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = _response_end(self.buffer)
        if end < 0:
            return
        now = time.perf_counter()
        status = int(self.buffer[9:12])
        del self.buffer[:end]
        self.result.latencies.append(now - self.sent_at)
        self.result.statuses[status] += 1
        if status != self.expect:
            self.result.failures += 1
        assert self.transport is not None
        if now < self.deadline:
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            if exc is None and time.perf_counter() >= self.deadline:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(exc or ConnectionError("the server closed early"))


def _response_end(buffer: bytearray) -> int:
    """Where the first complete response in ``buffer`` ends, or -1 while it is incomplete."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return -1
    head = bytes(buffer[:head_end]).lower()
    start = head.find(b"\r\ncontent-length:")
    if start >= 0:
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop >= 0 else None])
        end = head_end + 4 + length
        return end if len(buffer) >= end else -1
    if b"\r\ntransfer-encoding: chunked" not in head:
        return head_end + 4  # no body (204, 304)
    position = head_end + 4
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            return trailer_end + 4 if trailer_end >= 0 else -1
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return -1


async def _closed_loop(
    port: int, source: RequestSource, expect: int, connections: int, seconds: float
) -> LoadResult:
    loop = asyncio.get_running_loop()
    cpu = time.process_time()
    started = time.perf_counter()
    result = LoadResult(seconds=seconds, client_cpu=0.0)
    deadline = started + seconds
    clients = []
    for _ in range(connections):
        _, protocol = await loop.create_connection(
            lambda: _Connection(source, expect, deadline, result), "127.0.0.1", port
        )
        clients.append(protocol)
    await asyncio.gather(*(client.closed for client in clients))
    result.seconds = time.perf_counter() - started
    result.client_cpu = time.process_time() - cpu
    return result


def closed_loop(
    port: int, source: RequestSource, expect: int, connections: int, seconds: float
) -> LoadResult:
    """Drive ``127.0.0.1:port`` for ``seconds`` with ``connections`` connections, each sending
    the next request as soon as the previous answer is complete."""
    return asyncio.run(_closed_loop(port, source, expect, connections, seconds))
