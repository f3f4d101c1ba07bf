"""What each part of observability costs per request, switched on and off inside one process.

    python benchmarks/bench_observability_parts.py [--dsn URL] [--redis URL] [--rounds 12]
        [--requests 1600]

``bench_observability.py`` compares separate server processes, and a process's CPU per request
moves by 10-20 % from one start to the next on a shared machine. This one builds the application
once, in this process, as ``strongroom serve`` would with tracing on at 0 % sampling and access
lines at INFO (metrics off), and drives it through its ASGI interface (no HTTP: Granian's share
is the same for every configuration) with the hot request of the vault, an authenticated record
read. Between batches it switches parts off and on at run time:

- ``access lines``: the access logger's level (INFO or WARNING);
- ``server span``: the tracing hook of the request-context middleware;
- ``PostgreSQL spans``: the asyncpg instrumentation;
- ``Redis spans``: the Redis instrumentation.

Configurations: everything on, everything off, and each part off alone. Batches are interleaved
(A B C ..., then ... C B A) and the figure is the median of the process's CPU time per request.
The access lines go to a temporary file, as a server's standard output would.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_observability import drop, prepare, server_env  # a sibling script

PARTS = ("access lines", "server span", "PostgreSQL spans", "Redis spans")


class Switches:
    """Turns the parts of a running application's observability off and on."""

    def __init__(self, app: Any) -> None:
        from strongroom.http.middleware import RequestContextMiddleware
        from strongroom.observability import tracing

        self._tracing_module = tracing
        self._tracing = tracing._active
        assert self._tracing is not None, "tracing did not start"
        self._front = next(m for m in app.middlewares if isinstance(m, RequestContextMiddleware))
        self._hooks = self._front._hooks
        self._access = logging.getLogger("strongroom.access")
        self._on = dict.fromkeys(PARTS, True)

    def set(self, on: frozenset[str]) -> None:
        tracing = self._tracing
        self._access.setLevel(logging.INFO if "access lines" in on else logging.WARNING)
        hooks = tuple(
            h for h in self._hooks if "server span" in on or type(h).__name__ != "RequestTracer"
        )
        self._front._hooks, self._front._finishing = hooks, tuple(reversed(hooks))
        if ("PostgreSQL spans" in on) != self._on["PostgreSQL spans"]:
            if "PostgreSQL spans" in on:
                tracing._asyncpg = self._tracing_module._instrument_asyncpg(tracing.tracer)
            else:
                tracing._asyncpg()
                tracing._asyncpg = None
        if ("Redis spans" in on) != self._on["Redis spans"]:
            if "Redis spans" in on:
                tracing._redis = self._tracing_module._instrument_redis(tracing.tracer)
            else:
                tracing._redis()
                tracing._redis = None
        self._on = {part: part in on for part in PARTS}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=1600, help="per batch")
    args = parser.parse_args()
    data_url, keys_url, token, names = await prepare(args.dsn)
    for name in [k for k in os.environ if k.startswith(("STRONGROOM_", "OTEL_"))]:
        del os.environ[name]
    os.environ.update(server_env(data_url, keys_url, args.redis))
    os.environ.update(
        {
            "STRONGROOM_LOG_LEVEL": "INFO",
            "STRONGROOM_METRICS": "off",
            "STRONGROOM_TRACING": "on",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0",
        }
    )
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115  # open for the whole run
        "w", prefix="strongroom-bench-parts-", suffix=".log", delete=False
    )
    stdout, sys.stdout = sys.stdout, log
    from strongroom.app import create_app_from_env

    app = create_app_from_env()
    await app.start()
    try:
        results = await measure(app, token, args)
    finally:
        await app.stop()
        sys.stdout = stdout
        log.close()
        os.unlink(log.name)  # a small file, once, at the end
        await drop(args.dsn, names)
    report(results, args)


async def measure(app: Any, token: str, args: argparse.Namespace) -> dict[str, list[float]]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as c:
        schema = {"fields": {"email": {"type": "email"}, "card": {"type": "card"}}}
        assert (await c.put("/v1/collections/people", json=schema)).status_code == 201
        data = {"email": "b1@example.com", "card": "4111 1111 1111 1111"}
        created = await c.post(
            "/v1/collections/people/records", json={"subject_id": "b-1", "data": data}
        )
        assert created.status_code == 201, created.text
        path: str = created.headers["location"]

    raw = path.encode()
    scope_headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def client(count: int) -> None:
        for _ in range(count):
            status: list[int] = []

            async def send(message: dict[str, Any], status: list[int] = status) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": raw,
                "query_string": b"",
                "root_path": "",
                "headers": scope_headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            await app(scope, receive, send)
            if status != [200]:
                raise RuntimeError(f"the record read answered {status}")

    async def batch(requests: int) -> None:
        await asyncio.gather(*(client(requests // 16) for _ in range(16)))  # 16 in flight

    configurations = {"all on": frozenset(PARTS), "all off": frozenset()}
    configurations.update({f"{part} off": frozenset(PARTS) - {part} for part in PARTS})
    switches = Switches(app)
    await batch(800)  # warm up caches, statements and connections
    results: dict[str, list[float]] = {name: [] for name in configurations}
    order = list(configurations)
    for round_ in range(args.rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            switches.set(configurations[name])
            await batch(160)
            started = time.process_time()
            await batch(args.requests)
            results[name].append((time.process_time() - started) / args.requests * 1e6)
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {r[-1]:.0f}" for n, r in results.items()))
    switches.set(frozenset(PARTS))
    return results


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    base = statistics.median(results["all off"])
    print(
        f"\n{args.rounds} interleaved rounds of {args.requests} record reads, 16 in flight, "
        "one process (CPU µs per request, median)\n"
    )
    print("| configuration | CPU µs/request | vs all off |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.0f} | {(median / base - 1) * 100:+.1f} % |")


if __name__ == "__main__":
    asyncio.run(main())
