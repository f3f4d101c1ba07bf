"""What observability costs: throughput of the service with it off, and on as deployed.

    python benchmarks/bench_observability.py [--dsn URL] [--redis URL] [--rounds 5]
        [--slices 4] [--seconds 3] [--connections 32] [--pin] [--configs off,...]
        [--report PATH]

Each round starts one ``strongroom serve`` (Granian, one worker) per configuration, each on
databases of its own, and keeps them all running; after a warm-up it measures them in turn, in
short slices, the order changing from slice to slice. Drift on a shared machine (other tenants,
frequency changes) then hits every configuration alike within a round, and new processes every
round average out what differs from one start to the next (memory layout, hash seeds). Load
comes from a keep-alive HTTP/1.1 generator written on raw asyncio streams (an HTTP client
library would be the bottleneck). The request is the hot path of the vault: an authenticated
record read (rate limit in Redis, row and data key from PostgreSQL, decryption, masking, and the
audit event committed before the reply). Around each slice the script waits until the server
has linked every audit event into the chain, so a slice's CPU includes chaining its own events.

Configurations:
- ``off``: metrics off, tracing off, log level WARNING (no access lines);
- ``traced+logged``: tracing on with 0 % sampling, access lines at INFO, metrics off;
- ``all on``: the above plus Prometheus metrics (what a production pod runs).

``--configs`` chooses others for bisecting a difference (``traced``, ``logged``,
``info-no-access``, ``metrics``). Reports the median requests/s and server CPU per request of
each configuration, the difference to ``off`` and the median over rounds of each round's ratio
to ``off`` ("paired"), and writes them into the results block of ``benchmarks/OBSERVABILITY.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import procfs

from strongroom.domain.access import generate_api_key
from strongroom.store.migrate import migrate_all
from strongroom.store.tenants import TenantRepository

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
CONFIGS: dict[str, dict[str, str]] = {
    "off": {
        "STRONGROOM_METRICS": "off",
        "STRONGROOM_TRACING": "off",
        "STRONGROOM_LOG_LEVEL": "WARNING",
    },
    "traced+logged": {
        "STRONGROOM_METRICS": "off",
        "STRONGROOM_TRACING": "on",
        "STRONGROOM_LOG_LEVEL": "INFO",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    },
    "all on": {
        "STRONGROOM_METRICS": "on",
        "STRONGROOM_TRACING": "on",
        "STRONGROOM_LOG_LEVEL": "INFO",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    },
    # For bisecting a difference; chosen with --configs.
    "traced": {
        "STRONGROOM_METRICS": "off",
        "STRONGROOM_TRACING": "on",
        "STRONGROOM_LOG_LEVEL": "WARNING",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    },
    "logged": {
        "STRONGROOM_METRICS": "off",
        "STRONGROOM_TRACING": "off",
        "STRONGROOM_LOG_LEVEL": "INFO",
    },
    "info-no-access": {
        "STRONGROOM_METRICS": "off",
        "STRONGROOM_TRACING": "off",
        "STRONGROOM_LOG_LEVEL": "INFO",
        "STRONGROOM_ACCESS_LOG": "off",
    },
    "metrics": {
        "STRONGROOM_METRICS": "on",
        "STRONGROOM_TRACING": "off",
        "STRONGROOM_LOG_LEVEL": "WARNING",
    },
}
DEFAULT_CONFIGS = ("off", "traced+logged", "all on")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + sep + query


class Server:
    def __init__(self, env: dict[str, str], log: Path, cpu: int | None = None) -> None:
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "OTEL_"))}
        full.update(env)
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "strongroom",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                env=full,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
            )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready; see {log}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by Granian and its worker (one session)."""
        total = 0.0
        for entry in Path("/proc").glob("[0-9]*"):
            stat = procfs.stat(entry.name)
            if stat is not None and int(stat[1][3]) == self.process.pid:  # serve's group
                total += procfs.cpu_seconds(stat[1])
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def load(port: int, request: bytes, connections: int, seconds: float) -> tuple[int, int]:
    """Requests completed (and how many were not 200) by ``connections`` keep-alive clients."""
    stop_at = time.perf_counter() + seconds
    done = 0
    failed = 0

    async def client() -> None:
        nonlocal done, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                done += 1
                if head[9:12] != b"200":
                    failed += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return done, failed


async def prepare(dsn: str) -> tuple[str, str, str, str]:
    """Scratch databases, a tenant and a key; returns (data url, keys url, token, names)."""
    suffix = secrets.token_hex(4)
    names = (f"sr_bench_obs_{suffix}", f"sr_bench_obs_{suffix}_keys")
    admin = await asyncpg.connect(dsn)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    data_url, keys_url = with_database(dsn, names[0]), with_database(dsn, names[1])
    await migrate_all(data_url, keys_url)
    pool = await asyncpg.create_pool(data_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        tenants = TenantRepository(pool)
        await tenants.create("bench", ("support",))
        key = generate_api_key()
        await tenants.add_api_key("bench", key.key_id, key.secret_hash, frozenset({"admin"}), "b")
    finally:
        await pool.close()
    return data_url, keys_url, key.token, ",".join(names)


def server_env(data_url: str, keys_url: str, redis: str) -> dict[str, str]:
    """The settings every configuration shares: production, scratch databases, a fresh master
    key, JSON logs, and rate limits that never refuse."""
    return {
        "STRONGROOM_ENV": "production",
        "STRONGROOM_DATABASE_URL": data_url,
        "STRONGROOM_KEYSTORE_URL": keys_url,
        "STRONGROOM_REDIS_URL": redis,
        "STRONGROOM_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "STRONGROOM_RATE_LIMIT": "1000000",
        "STRONGROOM_RATE_BURST": "10000000",
        "STRONGROOM_LOG_FORMAT": "json",
    }


async def sealed(data_url: str) -> None:
    """Wait until the server has linked every audit event into the chain, so that no run leaves
    sealing work to the next (which may be another configuration) nor takes over any."""
    connection = await asyncpg.connect(data_url)
    try:
        async with asyncio.timeout(60):
            while await connection.fetchval(  # noqa: ASYNC110  # polling another process's work
                "SELECT EXISTS (SELECT 1 FROM audit_events e WHERE NOT EXISTS "
                "(SELECT 1 FROM audit_chain c WHERE c.event_seq = e.seq))"
            ):
                await asyncio.sleep(0.1)
    finally:
        await connection.close()


async def drop(dsn: str, names: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        for name in names.split(","):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


async def seed(server: Server, token: str) -> bytes:
    """A collection and one record in the server's databases; returns the request that reads it."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        schema = {"fields": {"email": {"type": "email"}, "card": {"type": "card"}}}
        assert (await client.put("/v1/collections/people", json=schema)).status_code == 201
        created = await client.post(
            "/v1/collections/people/records",
            json={
                "subject_id": "b-1",
                "data": {"email": "b1@example.com", "card": "4111 1111 1111 1111"},
            },
        )
        assert created.status_code == 201, created.text
        path = created.headers["location"]
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    return head.encode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("OBSERVABILITY.md"))
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the servers on the last CPU and this load generator on the others, so that "
        "they do not take turns on one core (PostgreSQL and Redis still run anywhere)",
    )
    parser.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma-separated, 'off' first; any of {', '.join(CONFIGS)}",
    )
    args = parser.parse_args()
    configs = args.configs.split(",")
    if configs[0] != "off" or not set(configs) <= set(CONFIGS) or len(set(configs)) < len(configs):
        parser.error(f"--configs: 'off' first, then any of {', '.join(CONFIGS)}, once each")
    server_cpu = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        server_cpu = cpus[-1]
        os.sched_setaffinity(0, set(cpus[:-1]))
    log = Path(tempfile.mkstemp(prefix="strongroom-bench-obs-", suffix=".log")[1])
    # Each configuration has databases of its own, so each server seals its own audit events.
    setups: dict[str, tuple[str, dict[str, str], str]] = {}  # data url, environment, token
    created: list[str] = []
    requests: dict[str, bytes] = {}
    results: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for name in configs:
            data_url, keys_url, token, names = await prepare(args.dsn)
            created.append(names)
            env = {**server_env(data_url, keys_url, args.redis), **CONFIGS[name]}
            setups[name] = (data_url, env, token)
        for round_ in range(args.rounds):
            servers: dict[str, Server] = {}
            try:
                # Started in a different order each round: no configuration is always first.
                shift = round_ % len(configs)
                for name in configs[shift:] + configs[:shift]:
                    servers[name] = Server(setups[name][1], log, server_cpu)
                    if name not in requests:
                        requests[name] = await seed(servers[name], setups[name][2])
                for name in configs:
                    await load(servers[name].port, requests[name], args.connections, args.warmup)
                done = dict.fromkeys(configs, 0)
                used = dict.fromkeys(configs, 0.0)
                for slice_ in range(args.slices):
                    # Each slice in another order, so that no configuration always follows
                    # the same one.
                    shift = (round_ * args.slices + slice_) % len(configs)
                    order = configs[shift:] + configs[:shift]
                    if slice_ % 2:
                        order.reverse()
                    for name in order:
                        server, data_url = servers[name], setups[name][0]
                        await sealed(data_url)
                        before = server.cpu_seconds()
                        count, failed = await load(
                            server.port, requests[name], args.connections, args.seconds
                        )
                        await sealed(data_url)  # the slice's CPU includes chaining its events
                        used[name] += server.cpu_seconds() - before
                        done[name] += count
                        if failed:
                            raise RuntimeError(f"{failed} requests failed under {name}; see {log}")
            finally:
                for server in servers.values():
                    server.stop()
            measured = args.slices * args.seconds
            for name in configs:
                results[name].append(done[name] / measured)
                cpu[name].append(used[name] / done[name] * 1e6)
                print(
                    f"round {round_ + 1} {name:>14}: {done[name] / measured:8.0f} req/s, "
                    f"{used[name] / done[name] * 1e6:6.0f} us CPU/request",
                    flush=True,
                )
    finally:
        for names in created:
            await drop(args.dsn, names)
    report = table(results, cpu, args)
    print(report)
    write_report(args.report, report)


def table(
    results: dict[str, list[float]], cpu: dict[str, list[float]], args: argparse.Namespace
) -> str:
    """Medians of throughput and of the server's CPU time per request; "paired" is the median
    over rounds of each run divided by the ``off`` run of the same round (drift cancels)."""
    baseline = statistics.median(results["off"])
    cpu_baseline = statistics.median(cpu["off"])
    lines = [
        f"- machine: {machine()}",
        f"- {args.rounds} rounds; in each, one server per configuration running side by side, "
        f"{args.warmup:g} s warm-up each, then {args.slices} slices of {args.seconds:g} s per "
        f"configuration in alternating order; {args.connections} keep-alive connections, "
        "Granian with 1 worker"
        + (", the server pinned to one CPU, the load generator to the other" if args.pin else ""),
        "",
        "| configuration | median req/s | vs off | paired vs off | server CPU µs/request "
        "| vs off | runs (req/s) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, runs in results.items():
        median = statistics.median(runs)
        paired = statistics.median(r / o for r, o in zip(runs, results["off"], strict=True))
        cost = statistics.median(cpu[name])
        runs_text = ", ".join(f"{r:.0f}" for r in runs)
        lines.append(
            f"| {name} | {median:.0f} | {(median / baseline - 1) * 100:+.1f} % "
            f"| {(paired - 1) * 100:+.1f} % | {cost:.0f} "
            f"| {(cost / cpu_baseline - 1) * 100:+.1f} % | {runs_text} |"
        )
    return "\n".join(lines) + "\n"


def write_report(path: Path, results: str) -> None:
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = path.read_text() if path.exists() else f"{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{results}{end}{tail}")


if __name__ == "__main__":
    asyncio.run(main())
