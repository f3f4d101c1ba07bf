"""The CI load gate: the seed SLO, measured with Locust against a production-like service.

    python loadtests/gate.py [--rps 1000] [--duration 60] [--warmup 15]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--redis-url redis://...]

Creates fresh databases, starts ``strongroom serve`` (one Granian worker, STRONGROOM_ENV=production,
native module required), seeds realistic records, runs the mixed scenario at a constant offered
rate, resets the statistics after the warm-up, and fails unless: achieved throughput >= 95 % of
the offered rate, p95 < 200 ms, p99 < 500 ms, no failed request, and the audit trail holds an
event for every request that succeeded. Prints the summary table. Exit status 0 = pass.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed import seed  # noqa: E402 - the folder is put on the path above

from strongroom.domain.access import generate_api_key  # noqa: E402
from strongroom.store.migrate import migrate_all  # noqa: E402
from strongroom.store.pool import AUTOVACUUM  # noqa: E402
from strongroom.store.tenants import TenantRepository  # noqa: E402

PERSONAS = {
    "backend": ("records:read", "records:write"),
    "support": ("records:read", "records:reveal"),
    "compliance": ("audit:read",),
    "privacy": ("subjects:export", "subjects:erase", "records:write"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + sep + query


async def prepare(admin_url: str) -> tuple[list[str], dict[str, str]]:
    suffix = secrets.token_hex(4)
    names = [f"sr_load_{suffix}", f"sr_load_{suffix}_keys"]
    admin = await asyncpg.connect(admin_url)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    data_url, keys_url = (with_database(admin_url, name) for name in names)
    await migrate_all(data_url, keys_url)
    pool = await asyncpg.create_pool(data_url, min_size=1, max_size=2)
    assert pool is not None
    tokens: dict[str, str] = {}
    try:
        tenants = TenantRepository(pool)
        await tenants.create("load", ("support", "billing"))
        for persona, scopes in {"admin": ("admin",), **PERSONAS}.items():
            key = generate_api_key()
            await tenants.add_api_key(
                "load", key.key_id, key.secret_hash, frozenset(scopes), persona
            )
            tokens[persona] = key.token
    finally:
        await pool.close()
    return names, {"data": data_url, "keys": keys_url, **tokens}


async def drop(admin_url: str, names: list[str]) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def count_events(data_url: str, run_id: str) -> int:
    connection = await asyncpg.connect(data_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(DISTINCT request_id) FROM audit_events WHERE request_id LIKE $1",
                f"lt-{run_id}-%",
            )
        )
    finally:
        await connection.close()


class Housekeeping:
    """Stands in for autovacuum when the server runs without it.

    A load run grows the audit trail by hundreds of rows a second. With autovacuum on (every
    production server), PostgreSQL analyzes and vacuums the tables as they grow; with it off (as on
    some test machines), the planner keeps the estimates of an empty table and picks plans that a
    real deployment would not. While active, this runs ``VACUUM (ANALYZE)`` on the database every
    ``interval`` seconds, and only when the server's ``autovacuum`` (or ``track_counts``) is off.
    """

    def __init__(self, url: str, interval: float = 30.0) -> None:
        self.url = url
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Housekeeping:
        if not self._fetchval(AUTOVACUUM):  # the service's own check; it warns at start
            print(
                "autovacuum is off on this server (or track_counts): VACUUM (ANALYZE) every "
                f"{self.interval:.0f} s during the run, as autovacuum would",
                flush=True,
            )
            self._fetchval("VACUUM (ANALYZE)")  # the seeded tables, before the load starts
            self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def _fetchval(self, statement: str) -> object:
        """Run one statement on a connection of its own."""

        async def run() -> object:
            connection = await asyncpg.connect(self.url)
            try:
                return await connection.fetchval(statement)
            finally:
                await connection.close()

        return asyncio.run(run())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._fetchval("VACUUM (ANALYZE)")


def start_service(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strongroom",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the service did not become ready:\n{log.read_text()[-3000:]}")


def locust_run(
    host: str,
    tokens: dict[str, str],
    *,
    state: Path,
    run_id: str,
    acks: Path,
    csv_prefix: Path,
    users: int,
    rps: float,
    warmup: int,
    seconds: int,
) -> tuple[list[str], dict[str, str]]:
    """The Locust command and environment of the mixed scenario at ``rps`` offered: every user
    at ``rps / users``, spawned over 60 % of ``warmup``, statistics reset once all have spawned
    (so the measured window covers the end of the warm-up and all of ``seconds``), persona keys
    from ``tokens`` (``admin`` and one per persona)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(
        {
            "STRONGROOM_LOAD_STATE": str(state),
            "STRONGROOM_LOAD_RUN": run_id,
            "STRONGROOM_LOAD_KEY": tokens["admin"],
            "STRONGROOM_LOAD_ACKS": str(acks),
            **{f"STRONGROOM_LOAD_KEY_{p.upper()}": tokens[p] for p in PERSONAS},
        }
    )
    command = [
        *(sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py")),
        *("--headless", "--host", host, "-u", str(users)),
        *("-r", f"{max(1.0, users / max(warmup * 0.6, 1)):.2f}"),
        *("-t", f"{warmup + seconds}s", "--per-user-rps", f"{rps / users:.4f}"),
        *("--csv", str(csv_prefix), "--only-summary", "--stop-timeout", "10"),
        *("--loglevel", "WARNING", "--reset-stats"),
    ]
    return command, env


def profile(pid: int, seconds: int, out: Path) -> None:
    """Sample the service (Granian and its worker) with py-spy for ``seconds``."""
    spy = Path(sys.executable).with_name("py-spy")
    subprocess.run(
        [
            *(str(spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking"),
            *("--rate", "100", "--duration", str(seconds)),
            *("--format", "raw" if out.suffix == ".txt" else "speedscope"),
            *("--output", str(out)),
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )


def summary(stats_csv: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    with stats_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return total, [r for r in rows if r["Name"] != "Aggregated"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rps", type=float, default=1000.0)
    parser.add_argument("--duration", type=int, default=60, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=15, help="seconds before stats reset")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "STRONGROOM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("STRONGROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
    )
    parser.add_argument("--p95-ms", type=float, default=200.0)
    parser.add_argument("--p99-ms", type=float, default=500.0)
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the service with py-spy over the measured window into this file: "
        "collapsed stacks if it ends in .txt (for flamegraph.pl), else speedscope JSON",
    )
    args = parser.parse_args()

    names, made = asyncio.run(prepare(args.admin_url))
    port = free_port()
    run_id = secrets.token_hex(5)
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(
        {
            "STRONGROOM_ENV": "production",
            "STRONGROOM_DATABASE_URL": made["data"],
            "STRONGROOM_KEYSTORE_URL": made["keys"],
            "STRONGROOM_REDIS_URL": args.redis_url,
            "STRONGROOM_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "STRONGROOM_REQUIRE_NATIVE": "1",
            "STRONGROOM_DB_POOL_MAX": "20",
        }
    )
    service = start_service(env, port, workdir / "service.log")
    host = f"http://127.0.0.1:{port}"
    try:
        state = asyncio.run(seed(host, made["admin"], args.records, "customers"))
        (workdir / "state.json").write_text(json.dumps(state))
        command, locust_env = locust_run(
            host,
            made,
            state=workdir / "state.json",
            run_id=run_id,
            acks=workdir / "acks.json",
            csv_prefix=workdir / "locust",
            users=args.users,
            rps=args.rps,
            warmup=args.warmup,
            seconds=args.duration,
        )
        with Housekeeping(made["data"]):
            load = subprocess.Popen(command, env=locust_env, cwd=ROOT)
            if args.profile:
                time.sleep(args.warmup)
                profile(service.pid, args.duration, args.profile)
            load.wait()
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            service.kill()
    total, rows = summary(workdir / "locust_stats.csv")
    acks = json.loads((workdir / "acks.json").read_text())["acknowledged"]
    events = asyncio.run(count_events(made["data"], run_id))
    asyncio.run(drop(args.admin_url, names))
    return report(args, total, rows, acks, events)


def report(
    args: argparse.Namespace,
    total: dict[str, str],
    rows: list[dict[str, str]],
    acks: int,
    events: int,
) -> int:
    rps = float(total["Requests/s"])
    p95 = float(total["95%"])
    p99 = float(total["99%"])
    failures = int(total["Failure Count"])
    print()
    print(f"{'request':58} {'count':>8} {'fail':>5} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6}")
    for row in [*rows, total]:
        print(
            f"{row['Name'][:58]:58} {row['Request Count']:>8} {row['Failure Count']:>5} "
            f"{float(row['Requests/s']):8.1f} {row['50%']:>6} {row['95%']:>6} {row['99%']:>6}"
        )
    checks = [
        (f"throughput >= {0.95 * args.rps:.0f} req/s", rps >= 0.95 * args.rps, f"{rps:.1f}"),
        (f"p95 < {args.p95_ms:.0f} ms", p95 < args.p95_ms, f"{p95:.0f} ms"),
        (f"p99 < {args.p99_ms:.0f} ms", p99 < args.p99_ms, f"{p99:.0f} ms"),
        ("no failed request", failures == 0, str(failures)),
        (
            "an audit event for every request that succeeded",
            events == acks,
            f"{events} events for {acks} requests",
        ),
    ]
    print()
    for name, ok, value in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {value}")
    passed = all(ok for _, ok, _ in checks)
    print(f"\nload gate: {'passed' if passed else 'FAILED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
