"""Strongroom's benchmark suite: the ceiling, floors, each endpoint, the mixed load, the peer,
a soak.

    .venv/bin/python benchmarks/suite.py [--runs 3] [--quick] [--soak-minutes 10] [--skip-soak]
        [--only ceiling,floor,endpoints,mixed,peer,soak] [--dsn URL] [--redis URL]

Everything is measured on this machine in one invocation, and regenerates the results block of
``benchmarks/REPORT.md`` and the charts in ``benchmarks/report/``:

- **ceiling**: ``hello_asgi.py`` (a small JSON answer) on Granian with the flags ``strongroom
  serve`` uses (ASGI, factory, one worker, default loop and HTTP settings);
- **floor**: ``floor_app.py``, the masked read's route served by less than Strongroom (a
  BlackSheep route; plus the row by primary key through an asyncpg pool; plus a durable audit
  event through the group-commit writer), with the ceiling's flags, on copies of the seeded data:
  what the framework, the database round trip and the audit wait cost before Strongroom's own code;
- **endpoints**: ``strongroom serve`` (one Granian worker, ``STRONGROOM_ENV=production``, native
  module required, rate limits high enough never to refuse) answering a masked read, a create, a
  reveal (``?reveal=email``, ``X-Purpose: support``), a blind-index search and ``/v1/redact``;
- **mixed**: the Locust personas of ``loadtests/locustfile.py`` on records seeded by
  ``loadtests/seed.py``, as ``loadtests/gate.py`` runs them, at increasing offered rates (open
  model: Locust headless, ``constant_throughput`` users, figures from its CSV);
- **peer**: OpenBao (dev server, in-memory storage, a declarative file audit device) doing transit
  encrypt and decrypt of e-mail addresses and phone numbers with an aes256-gcm96 key, against
  Strongroom's create and reveal on two Granian workers;
- **soak**: the mixed scenario at 1 000 req/s for ``--soak-minutes``, the worker's RSS every 5 s.

The ceiling, floors, endpoints and peer are closed-loop: ``loadgen.py`` keeps 32 keep-alive
connections busy (a warm-up, then the measured window) and records every latency. Each
configuration gets a fresh server (Strongroom: a fresh copy of the seeded databases),
configurations are interleaved (A B C, then C B A, ...) and the report gives the median of
``--runs`` runs with each run's figure. Server CPU is utime + stime of every process in the
server's session (Granian's main process and its workers, or the ``bao`` process) over the measured
window, divided by the requests completed in it; the CPU of the PostgreSQL backends serving the
scratch databases is given apart. Worker RSS (VmRSS of the Granian main process's children) is
sampled every second, every 5 s in the soak. Scratch databases, servers and temporary files are
removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import importlib.metadata
import itertools
import json
import math
import os
import platform
import random
import resource
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "loadtests"))
sys.path.insert(0, str(HERE))

import gate  # noqa: E402 - the folders are put on the path above
import loadgen  # noqa: E402
import procfs  # noqa: E402
from seed import person, seed  # noqa: E402

REPORT = HERE / "REPORT.md"
CHARTS = HERE / "report"
RESULTS = CHARTS / "results.json"
SECTIONS = ("ceiling", "floor", "endpoints", "mixed", "peer", "soak")
FLOORS = {  # floor_app.py's rungs, in order, and their names in the report
    "framework": "floor: BlackSheep route",
    "read": "floor: + primary-key read",
    "audited": "floor: + durable audit event",
}
BAO = Path(sys.executable).with_name("bao")
COLLECTION = "customers"
MIB = 1024 * 1024
BUDGET_FACTOR = 6  # a request may cost at most this many times the ceiling's CPU
FLOOR_STEPS = {  # what the step up to each rung adds, as the report words it
    FLOORS["framework"]: "BlackSheep's application and router over raw ASGI",
    FLOORS["read"]: "one primary-key read through the asyncpg pool",
    FLOORS["audited"]: "waiting for a durable audit event (group commit)",
    "masked read": "Strongroom's own request path (API key, rate, context and observability "
    "hooks, schema, subject key, decryption and masking, headers)",
}
POD_CPU = 0.5  # CPU seconds per second of one 500m pod


# -- processes: CPU, RSS, start and stop ---------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """CPU seconds used so far, sampled at wall-clock time ``at``."""

    at: float
    server: float  # every process in the server's session
    database: dict[int, float]  # each PostgreSQL backend connected to the server's databases

    def since(self, before: Usage) -> tuple[float, float]:
        """(server, PostgreSQL) CPU seconds used between ``before`` and this sample."""
        database = sum(cpu - before.database.get(pid, 0.0) for pid, cpu in self.database.items())
        return self.server - before.server, database


class Server:
    """A server in its own session (so its CPU is that of every process in the session), with a
    thread sampling the RSS of its workers every ``interval`` seconds while it runs."""

    def __init__(
        self,
        name: str,
        port: int,
        argv: list[str],
        env: dict[str, str],
        workdir: Path,
        ready_path: str,
        *,
        cwd: Path = ROOT,
        databases: tuple[str, ...] = (),
        interval: float = 1.0,
    ) -> None:
        self.name = name
        self.port = port
        self.databases = databases
        self.log = workdir / f"{name}-{port}.log"
        self.cleanups: list[Callable[[], None]] = []
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.rss: list[tuple[float, int]] = []  # (wall time, largest worker RSS in bytes)
        self.usages: list[Usage] = []
        self._stop = threading.Event()
        self._interval = interval
        self._monitor = threading.Thread(target=self._sample_loop, daemon=True)
        try:
            self._wait_ready(ready_path)
        except BaseException:
            self.stop()
            raise
        self._monitor.start()

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def problems(self, count: int = 5) -> str:
        """The server's last ``count`` log lines at WARNING or above (JSON or plain)."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        marks = ("WARNING", "ERROR", "CRITICAL", "Traceback")
        return "\n".join([line for line in lines if any(m in line for m in marks)][-count:])

    def workers(self) -> list[int]:
        """Granian's workers (the main process's children), or the process itself."""
        children = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = procfs.stat(entry.name)
                if stat and int(stat[1][1]) == self.process.pid:
                    children.append(int(entry.name))
        return children or [self.process.pid]

    def usage(self) -> Usage:
        server = 0.0
        database: dict[int, float] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = procfs.stat(entry.name)
            if stat is None:
                continue
            name, fields = stat
            if int(fields[3]) == self.process.pid:
                server += procfs.cpu_seconds(fields)
            elif self.databases and name == "postgres":
                # A backend's title is "postgres: <cluster>: <user> <database> <client> <state>".
                with contextlib.suppress(OSError):
                    title = (
                        Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
                    )
                    if any(f" {db} " in title for db in self.databases):
                        database[int(entry.name)] = procfs.cpu_seconds(fields)
        return Usage(time.time(), server, database)

    def _sample_loop(self) -> None:
        while True:
            self.rss.append((time.time(), max(procfs.rss_bytes(pid) for pid in self.workers())))
            self.usages.append(self.usage())
            if self._stop.wait(self._interval):
                return

    def peak_rss_mib(self) -> float:
        return max((rss for _, rss in self.rss), default=0) / MIB

    def usage_at(self, moment: float) -> Usage:
        """The sample taken closest to wall-clock time ``moment``."""
        return min(self.usages, key=lambda usage: abs(usage.at - moment))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole session after 30 s; then the cleanups."""
        self._stop.set()
        if self._monitor.is_alive():
            self._monitor.join()
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
        finally:
            for cleanup in reversed(self.cleanups):
                cleanup()
            self.log.unlink(missing_ok=True)


# -- the bench: databases, servers, requests -----------------------------------------------------


@dataclass
class Options:
    runs: int
    quick: bool
    connections: int
    seconds: float
    warmup: float
    rates: list[int]
    mixed_warmup: int
    mixed_seconds: int
    soak_minutes: float
    records: int
    dsn: str
    redis: str


@dataclass
class Bench:
    """Scratch databases seeded once (kept as templates), and servers started on fresh copies."""

    options: Options
    workdir: Path
    master_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    databases: list[str] = field(default_factory=list)  # every database created, to drop
    template: list[str] = field(default_factory=list)  # the seeded data and key-store databases
    tokens: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    _copies: itertools.count[int] = field(default_factory=itertools.count)

    def prepare(self) -> None:
        """Template databases like gate.py's (tenant, admin and persona keys), seeded."""
        names, made = asyncio.run(gate.prepare(self.options.dsn))
        self.databases += names
        self.template = names
        self.tokens = {k: v for k, v in made.items() if k not in ("data", "keys")}
        server = self._strongroom_on(names, workers=1)
        try:
            host = f"http://127.0.0.1:{server.port}"
            self.state = asyncio.run(
                seed(host, self.tokens["admin"], self.options.records, COLLECTION)
            )
        finally:
            server.stop()
        (self.workdir / "state.json").write_text(json.dumps(self.state))

    def url(self, name: str) -> str:
        return gate.with_database(self.options.dsn, name)

    def _copy(self) -> list[str]:
        n = next(self._copies)
        names = [f"{self.template[0]}_c{n}", f"{self.template[0]}_c{n}_keys"]
        asyncio.run(self._create_from_templates(names))
        self.databases += names
        return names

    async def _create_from_templates(self, names: list[str]) -> None:
        admin = await asyncpg.connect(self.options.dsn)
        try:
            for name, template in zip(names, self.template, strict=True):
                for attempt in range(20):  # the template's last backends may still be exiting
                    try:
                        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                        break
                    except asyncpg.ObjectInUseError:
                        if attempt == 19:
                            raise
                        await asyncio.sleep(0.5)
        finally:
            await admin.close()

    def _drop(self, names: list[str]) -> None:
        asyncio.run(gate.drop(self.options.dsn, names))
        for name in names:
            self.databases.remove(name)

    def strongroom(self, workers: int = 1, interval: float = 1.0) -> Server:
        """``strongroom serve`` on a fresh copy of the seeded databases, dropped when it stops."""
        names = self._copy()
        try:
            server = self._strongroom_on(names, workers, interval)
        except BaseException:
            self._drop(names)
            raise
        server.cleanups.append(lambda: self._drop(names))
        return server

    def _strongroom_on(self, names: list[str], workers: int, interval: float = 1.0) -> Server:
        port = gate.free_port()
        metrics = self.workdir / f"metrics-{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "OTEL_"))}
        env.update(
            {  # gate.py's production-like settings, with limits the load never reaches
                "STRONGROOM_ENV": "production",
                "STRONGROOM_DATABASE_URL": self.url(names[0]),
                "STRONGROOM_KEYSTORE_URL": self.url(names[1]),
                "STRONGROOM_REDIS_URL": self.options.redis,
                "STRONGROOM_MASTER_KEY": self.master_key,
                "STRONGROOM_REQUIRE_NATIVE": "1",
                "STRONGROOM_DB_POOL_MAX": "20",
                "STRONGROOM_RATE_LIMIT": "1000000",
                "STRONGROOM_RATE_BURST": "10000000",
                "STRONGROOM_METRICS_DIR": str(metrics),
            }
        )
        argv = [sys.executable, "-m", "strongroom", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(workers)]
        server = Server(
            f"strongroom-{workers}w",
            port,
            argv,
            env,
            self.workdir,
            "/readyz",
            databases=tuple(names),
            interval=interval,
        )
        server.cleanups.append(lambda: shutil.rmtree(metrics, ignore_errors=True))
        return server

    @staticmethod
    def _granian(port: int, target: str) -> list[str]:
        """Granian serving ``target`` (run from ``benchmarks/``) as ``strongroom serve`` runs it."""
        argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
        return [*argv, "--host", "127.0.0.1", "--port", str(port), "--workers", "1", target]

    def hello(self) -> Server:
        """hello_asgi on Granian, launched exactly as ``strongroom serve`` launches Granian."""
        port = gate.free_port()
        argv = self._granian(port, "hello_asgi:create_app")
        return Server("hello", port, argv, dict(os.environ), self.workdir, "/", cwd=HERE)

    def floor(self, rung: str) -> Server:
        """floor_app at ``rung`` on Granian with the ceiling's flags; the rungs that read get a
        fresh copy of the seeded data database, dropped when the server stops."""
        port = gate.free_port()
        argv = self._granian(port, "floor_app:create_app")
        env = {**os.environ, "FLOOR_RUNG": rung}
        names: tuple[str, ...] = ()
        if rung != "framework":
            copied = self._copy()
            env["FLOOR_DSN"] = self.url(copied[0])
            names = tuple(copied)
        try:
            server = Server(
                f"floor-{rung}", port, argv, env, self.workdir, "/", databases=names, cwd=HERE
            )
        except BaseException:
            if names:
                self._drop(list(names))
            raise
        if names:
            server.cleanups.append(lambda: self._drop(list(names)))
        return server

    def openbao(self) -> tuple[Server, str]:
        """A dev OpenBao with a file audit device and transit key ``fields``; (server, token)."""
        port = gate.free_port()
        token = secrets.token_hex(16)
        home = Path(tempfile.mkdtemp(prefix="openbao-", dir=self.workdir))
        config = home / "audit.hcl"
        config.write_text(  # OpenBao refuses `bao audit enable`: audit devices are declarative
            'audit "file" "file" {\n  options {\n'
            f'    file_path = "{home / "audit.log"}"\n  }}\n}}\n'
        )
        argv = [str(BAO), "server", "-dev", f"-dev-root-token-id={token}"]
        argv += [f"-dev-listen-address=127.0.0.1:{port}", f"-config={config}"]
        env = {**os.environ, "HOME": str(home)}
        server = Server("openbao", port, argv, env, self.workdir, "/v1/sys/health", cwd=home)
        server.cleanups.append(lambda: shutil.rmtree(home, ignore_errors=True))
        try:
            cli = {**env, "BAO_ADDR": f"http://127.0.0.1:{port}", "BAO_TOKEN": token}
            for command in (
                ["secrets", "enable", "transit"],
                ["write", "-f", "transit/keys/fields", "type=aes256-gcm96"],
            ):
                subprocess.run([str(BAO), *command], env=cli, check=True, capture_output=True)
            audits = subprocess.run(
                [str(BAO), "audit", "list", "-format=json"],
                env=cli,
                check=True,
                capture_output=True,
            )
            if "file/" not in json.loads(audits.stdout):
                raise RuntimeError("OpenBao started without its file audit device")
        except BaseException:
            server.stop()
            raise
        return server, token

    # Requests for the closed-loop targets.

    def _auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['admin']}", **extra}

    def masked_read(self) -> loadgen.RequestSource:
        return loadgen.cycle(
            loadgen.http_request("GET", r["url"], self._auth()) for r in self.state["records"]
        )

    def reveal(self) -> loadgen.RequestSource:
        headers = self._auth(**{"X-Purpose": "support"})
        return loadgen.cycle(
            loadgen.http_request("GET", f"{r['url']}?reveal=email", headers)
            for r in self.state["records"]
        )

    def search(self) -> loadgen.RequestSource:
        path = f"/v1/collections/{COLLECTION}/records"
        return loadgen.cycle(
            loadgen.http_request("GET", f"{path}?email={quote(r['email'].upper())}", self._auth())
            for r in self.state["records"]
        )

    def create(self) -> loadgen.RequestSource:
        """A new record of a new subject for every request, like the personas' creates."""
        path = f"/v1/collections/{COLLECTION}/records"
        headers = self._auth(**{"Content-Type": "application/json"})
        tag = secrets.token_hex(4)
        counter = itertools.count()

        def next_request() -> bytes:
            n = next(counter)
            body = {"subject_id": f"bench-{tag}-{n}", "data": person(n, random.Random(n))}
            return loadgen.http_request("POST", path, headers, json.dumps(body).encode())

        return next_request

    def redact(self) -> loadgen.RequestSource:
        headers = self._auth(**{"Content-Type": "application/json"})
        texts = []
        for n in range(200):
            p = person(n, random.Random(n))
            texts.append(
                f"Ticket from {p['name']} <{p['email']}>, call back on {p['phone']}; paid with "
                f"card {p['card']} (IBAN {p['iban']}), SSN {p['ssn']}. Customer is upset."
            )
        return loadgen.cycle(
            loadgen.http_request(
                "POST", "/v1/redact", headers, json.dumps({"text": t, "style": "label"}).encode()
            )
            for t in texts
        )

    def field_values(self) -> list[str]:
        """E-mail addresses and phone numbers like the seeded records'."""
        values = []
        for n in range(self.options.records):
            p = person(n, random.Random(n))
            values += [p["email"], p["phone"]]
        return values

    def transit_encrypt(self, token: str) -> loadgen.RequestSource:
        headers = {"X-Vault-Token": token, "Content-Type": "application/json"}
        return loadgen.cycle(
            loadgen.http_request(
                "POST",
                "/v1/transit/encrypt/fields",
                headers,
                json.dumps({"plaintext": base64.b64encode(v.encode()).decode()}).encode(),
            )
            for v in self.field_values()
        )

    def transit_decrypt(self, port: int, token: str) -> loadgen.RequestSource:
        """Decryptions of the same values, encrypted beforehand in one batch."""
        values = self.field_values()
        ciphertexts: list[str] = []
        for start in range(0, len(values), 100):  # OpenBao caps the strings in one JSON body
            batch = [
                {"plaintext": base64.b64encode(v.encode()).decode()}
                for v in values[start : start + 100]
            ]
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v1/transit/encrypt/fields",
                headers={"X-Vault-Token": token},
                json={"batch_input": batch},
                timeout=60,
            )
            answer.raise_for_status()
            ciphertexts += [item["ciphertext"] for item in answer.json()["data"]["batch_results"]]
        check = httpx.post(
            f"http://127.0.0.1:{port}/v1/transit/decrypt/fields",
            headers={"X-Vault-Token": token},
            json={"ciphertext": ciphertexts[0]},
        ).json()["data"]["plaintext"]
        assert base64.b64decode(check).decode() == values[0]
        headers = {"X-Vault-Token": token, "Content-Type": "application/json"}
        return loadgen.cycle(
            loadgen.http_request(
                "POST",
                "/v1/transit/decrypt/fields",
                headers,
                json.dumps({"ciphertext": c}).encode(),
            )
            for c in ciphertexts
        )


# -- closed-loop measurements --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One closed-loop configuration: how to start its server and what to send it."""

    section: str
    name: str
    start: Callable[[], tuple[Server, loadgen.RequestSource]]
    expect: int


def targets(bench: Bench, sections: set[str]) -> list[Target]:
    def strongroom(source: Callable[[], loadgen.RequestSource], workers: int = 1) -> Any:
        return lambda: (bench.strongroom(workers), source())

    def hello() -> tuple[Server, loadgen.RequestSource]:
        return bench.hello(), loadgen.cycle([loadgen.http_request("GET", "/")])

    def bao(decrypt: bool) -> Callable[[], tuple[Server, loadgen.RequestSource]]:
        def start() -> tuple[Server, loadgen.RequestSource]:
            server, token = bench.openbao()
            try:
                if decrypt:
                    return server, bench.transit_decrypt(server.port, token)
                return server, bench.transit_encrypt(token)
            except BaseException:
                server.stop()
                raise

        return start

    def floor(rung: str) -> Callable[[], tuple[Server, loadgen.RequestSource]]:
        return lambda: (bench.floor(rung), bench.masked_read())

    chosen = []
    if "ceiling" in sections:
        chosen.append(Target("ceiling", "hello-world", hello, 200))
    if "floor" in sections:
        chosen += [Target("floor", name, floor(rung), 200) for rung, name in FLOORS.items()]
    if "endpoints" in sections:
        chosen += [
            Target("endpoints", "masked read", strongroom(bench.masked_read), 200),
            Target("endpoints", "create", strongroom(bench.create), 201),
            Target("endpoints", "reveal", strongroom(bench.reveal), 200),
            Target("endpoints", "search", strongroom(bench.search), 200),
            Target("endpoints", "redact", strongroom(bench.redact), 200),
        ]
    if "peer" in sections:
        chosen += [
            Target("peer", "OpenBao transit encrypt", bao(decrypt=False), 200),
            Target("peer", "OpenBao transit decrypt", bao(decrypt=True), 200),
            Target("peer", "Strongroom create, 2 workers", strongroom(bench.create, 2), 201),
            Target("peer", "Strongroom reveal, 2 workers", strongroom(bench.reveal, 2), 200),
        ]
    return chosen


def measure(target: Target, options: Options) -> dict[str, float]:
    server, source = target.start()
    try:
        port, connections = server.port, options.connections
        loadgen.closed_loop(port, source, target.expect, connections, options.warmup)
        before = server.usage()
        result = loadgen.closed_loop(port, source, target.expect, connections, options.seconds)
        after = server.usage()
        peak = server.peak_rss_mib()
        if result.failures:
            print(f"  {target.name}: statuses {dict(result.statuses)}", file=sys.stderr)
            print(server.problems(), file=sys.stderr)
    except BaseException:
        print(server.tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
    cpu, database = after.since(before)
    return {
        "rps": result.rps,
        "p50": result.percentile_ms(50),
        "p95": result.percentile_ms(95),
        "p99": result.percentile_ms(99),
        "cpu_us": cpu / result.requests * 1e6,
        "db_cpu_us": database / result.requests * 1e6 if server.databases else math.nan,
        "server_cores": cpu / result.seconds,
        "client_cpu_pct": result.client_cpu / result.seconds * 100,
        "peak_rss_mib": peak,
        "requests": result.requests,
        "failures": result.failures,
    }


def closed_loop_section(
    bench: Bench, chosen: list[Target], options: Options
) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {target.name: [] for target in chosen}
    for run in range(options.runs):
        for target in chosen if run % 2 == 0 else chosen[::-1]:
            figures = measure(target, options)
            runs[target.name].append(figures)
            print(
                f"run {run + 1} {target.name:>30}: {figures['rps']:7.0f} req/s, "
                f"p50 {figures['p50']:6.1f} p99 {figures['p99']:6.1f} ms, "
                f"{figures['cpu_us']:6.0f} µs CPU/req, RSS {figures['peak_rss_mib']:.0f} MiB, "
                f"{figures['failures']} failed",
                flush=True,
            )
    return runs


# -- Locust: the mixed scenario and the soak -----------------------------------------------------


def locust(bench: Bench, server: Server, rps: float, warmup: int, seconds: int) -> dict[str, Any]:
    """gate.py's Locust run against ``server``: personas, keys, spawn rate, reset after ramp-up.

    Latency percentiles and throughput come from Locust's CSV (from the end of the ramp-up to the
    end); the server's CPU per request is its CPU rate over the window from ``warmup`` to the end
    divided by Locust's throughput.
    """
    run_id = secrets.token_hex(5)
    prefix = bench.workdir / f"locust-{run_id}"
    users = max(100, math.ceil(rps / 10))  # gate.py's 100, more when one would need > 10 req/s
    command, env = gate.locust_run(
        f"http://127.0.0.1:{server.port}",
        bench.tokens,
        state=bench.workdir / "state.json",
        run_id=run_id,
        acks=Path(f"{prefix}-acks.json"),
        csv_prefix=prefix,
        users=users,
        rps=rps,
        warmup=warmup,
        seconds=seconds,
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    # Without autovacuum on the server, gate.Housekeeping analyzes the tables as they grow.
    with (
        gate.Housekeeping(bench.url(server.databases[0])),
        Path(f"{prefix}.log").open("wb") as sink,
    ):
        subprocess.run(
            command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, check=False
        )
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    try:
        total, _ = gate.summary(Path(f"{prefix}_stats.csv"))
    except (OSError, StopIteration):
        log = Path(f"{prefix}.log").read_text()
        raise RuntimeError(f"Locust wrote no statistics:\n{log}") from None
    with Path(f"{prefix}_stats_history.csv").open() as handle:
        history = [int(row["Timestamp"]) for row in csv.DictReader(handle)]
    test_start = history[0] if history else started
    window = (server.usage_at(test_start + warmup), server.usage_at(ended))
    cpu, database = window[1].since(window[0])
    elapsed = window[1].at - window[0].at
    achieved = float(total["Requests/s"])
    acks = json.loads(Path(f"{prefix}-acks.json").read_text())["acknowledged"]
    events = asyncio.run(gate.count_events(bench.url(server.databases[0]), run_id))
    for path in bench.workdir.glob(f"locust-{run_id}*"):
        path.unlink()
    return {
        "offered": rps,
        "users": users,
        "rps": achieved,
        "p50": float(total["50%"]),
        "p95": float(total["95%"]),
        "p99": float(total["99%"]),
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "cpu_us": cpu / elapsed / achieved * 1e6,
        "db_cpu_us": database / elapsed / achieved * 1e6,
        "server_cores": cpu / elapsed,
        "locust_cpu_pct": locust_cpu / (ended - started) * 100,
        "acknowledged": acks,
        "audited": events,
        "peak_rss_mib": server.peak_rss_mib(),
        "started": started,
    }


def mixed_section(bench: Bench, options: Options) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {str(rate): [] for rate in options.rates}
    for run in range(options.runs):
        for rate in options.rates if run % 2 == 0 else options.rates[::-1]:
            server = bench.strongroom()
            try:
                figures = locust(bench, server, rate, options.mixed_warmup, options.mixed_seconds)
            finally:
                server.stop()
            figures.pop("started")
            runs[str(rate)].append(figures)
            print(
                f"run {run + 1} mixed {rate:5d} req/s offered: {figures['rps']:7.0f} achieved, "
                f"p50 {figures['p50']:.0f} p95 {figures['p95']:.0f} p99 {figures['p99']:.0f} ms, "
                f"{figures['failures']} failed, {figures['cpu_us']:.0f} µs CPU/req, "
                f"RSS {figures['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    return runs


def soak_section(bench: Bench, options: Options) -> dict[str, Any]:
    server = bench.strongroom(interval=5.0)
    warmup = 15
    try:
        figures = locust(bench, server, 1000, warmup, round(options.soak_minutes * 60))
        started = figures.pop("started")
        series = [(at - started, rss) for at, rss in server.rss]
    finally:
        server.stop()
    loaded = [(t, rss) for t, rss in series if t >= 0]
    figures.update(
        {
            "minutes": options.soak_minutes,
            "warmup_s": warmup,
            "rss_idle_mib": series[0][1] / MIB,
            "rss_start_mib": loaded[0][1] / MIB,
            "rss_after_warmup_mib": min(loaded, key=lambda s: abs(s[0] - warmup))[1] / MIB,
            "rss_end_mib": loaded[-1][1] / MIB,
        }
    )
    print(
        f"soak {options.soak_minutes:g} min: {figures['rps']:.0f} req/s, p99 {figures['p99']:.0f}"
        f" ms, {figures['failures']} failed, RSS {figures['rss_start_mib']:.0f} -> "
        f"{figures['rss_end_mib']:.0f} MiB (peak {figures['peak_rss_mib']:.0f})",
        flush=True,
    )
    return {"result": figures, "series": series}


# -- the report ----------------------------------------------------------------------------------


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(options: Options) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or platform.machine(),
    )
    memory = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )

    async def server_versions() -> tuple[str, str]:
        connection = await asyncpg.connect(options.dsn)
        try:
            return str(await connection.fetchval("SHOW server_version")), str(
                await connection.fetchval("SHOW synchronous_commit")
            )
        finally:
            await connection.close()

    postgres, synchronous = asyncio.run(server_versions())
    client = redis.Redis.from_url(options.redis)
    try:
        redis_version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    bao = subprocess.run([str(BAO), "version"], capture_output=True, text=True, check=False)
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "memory": f"{memory / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": ", ".join(
            f"{p} {version(p)}" for p in ("granian", "blacksheep", "asyncpg", "locust")
        ),
        "postgres": f"PostgreSQL {postgres} (same machine, synchronous_commit={synchronous})",
        "redis": f"Redis {redis_version} (same machine)",
        "openbao": bao.stdout.split("(")[0].strip() or "unavailable",
    }


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def each(runs: list[dict[str, float]], key: str, digits: int = 0) -> str:
    return " / ".join(f"{run[key]:,.{digits}f}" for run in runs)


def number(value: float, digits: int = 0) -> str:
    return "—" if math.isnan(value) else f"{value:,.{digits}f}"


def ceiling_us(results: dict[str, Any]) -> float | None:
    ceiling = results["sections"].get("ceiling")
    return med(ceiling["runs"]["hello-world"], "cpu_us") if ceiling else None


def reference_mixed(mixed: dict[str, Any]) -> tuple[str, list[dict[str, float]]]:
    """The offered rate whose CPU per request stands for the mixed scenario: 1 000 req/s (the
    load gate's rate) when measured, else the highest rate achieved to 95 %."""
    runs = mixed["runs"]
    if "1000" in runs:
        return "1000", runs["1000"]
    kept = [rate for rate, r in runs.items() if med(r, "rps") >= 0.95 * float(rate)]
    rate = max(kept or list(runs), key=float)
    return rate, runs[rate]


def meta_line(meta: dict[str, Any]) -> str:
    kind = "**quick smoke pass**, " if meta["quick"] else ""
    return (
        f"_Measured {meta['date']} ({kind}{meta['runs']} run(s), {meta['elapsed_s'] / 60:.1f} "
        f"min; {meta['method']})._"
    )


def floor_steps(rows: dict[str, list[dict[str, float]]]) -> list[str]:
    """What each step from the ceiling to the masked read adds, in µs of server CPU per request
    (medians), when the floors were measured in the same run."""
    ladder = ["hello-world", *FLOORS.values(), "masked read"]
    if not all(name in rows for name in ladder):
        return []
    lines = ["What each step from the ceiling to the masked read adds (medians, same run):", ""]
    for lower, upper in itertools.pairwise(ladder):
        added = med(rows[upper], "cpu_us") - med(rows[lower], "cpu_us")
        label = FLOOR_STEPS.get(upper, upper)
        lines.append(f"- {label}: {added:+,.0f} µs")
    return [*lines, ""]


def render(results: dict[str, Any]) -> str:
    info = results["machine"]
    sections = results["sections"]
    lines = [
        "## Machine",
        "",
        f"- CPU: {info['cpu']}; RAM {info['memory']}; {info['os']}",
        f"- Python {info['python']}; {info['libraries']}",
        f"- {info['postgres']}; {info['redis']}; {info['openbao']}",
        "",
        "Rerun everything (defaults: `--runs 3 --soak-minutes 10`):",
        "",
        "    .venv/bin/python benchmarks/suite.py",
        "",
        f"Last invocation: `{results['command']}`, {results['elapsed_s'] / 60:.0f} min; each "
        "section below says when it was measured.",
        "",
    ]
    base = ceiling_us(results)
    closed_rows = []
    for name in ("ceiling", "floor", "endpoints"):
        if name in sections:
            closed_rows += list(sections[name]["runs"].items())
    if closed_rows:
        lines += ["## Ceiling, floors and endpoints (closed loop, one Granian worker)", ""]
        for name in ("ceiling", "floor", "endpoints"):
            if name in sections:
                lines += [f"{name.capitalize()}: {meta_line(sections[name]['meta'])}", ""]
        lines += [
            "| target | req/s | p50 ms | p95 ms | p99 ms | server CPU µs/req | × ceiling "
            "| PostgreSQL CPU µs/req | peak worker RSS MiB | failed | generator CPU | "
            "runs: req/s | runs: CPU µs/req |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for name, runs in closed_rows:
            cost = med(runs, "cpu_us")
            ratio = f"{cost / base:.1f}×" if base else "—"
            lines.append(
                f"| {name} | {med(runs, 'rps'):,.0f} | {med(runs, 'p50'):.1f} "
                f"| {med(runs, 'p95'):.1f} | {med(runs, 'p99'):.1f} | {cost:,.0f} | {ratio} "
                f"| {number(med(runs, 'db_cpu_us'))} | {med(runs, 'peak_rss_mib'):.0f} "
                f"| {sum(int(r['failures']) for r in runs)} | {med(runs, 'client_cpu_pct'):.0f} % "
                f"| {each(runs, 'rps')} | {each(runs, 'cpu_us')} |"
            )
        lines += [
            "",
            *floor_steps(dict(closed_rows)),
            "![CPU per request by endpoint](report/cpu_per_request.png)",
            "",
        ]
    if "mixed" in sections:
        mixed = sections["mixed"]
        lines += [
            "## Mixed scenario (Locust personas, open model, one Granian worker)",
            "",
            meta_line(mixed["meta"]),
            "",
            "| offered req/s | users | achieved req/s | p50 ms | p95 ms | p99 ms | failed "
            "| audited / acknowledged | server CPU µs/req | server CPU (cores) "
            "| PostgreSQL CPU µs/req | peak worker RSS MiB | Locust CPU | runs: achieved "
            "| runs: p99 ms |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for rate, runs in mixed["runs"].items():
            audited = sum(int(r["audited"]) for r in runs)
            acked = sum(int(r["acknowledged"]) for r in runs)
            lines.append(
                f"| {int(rate):,} | {med(runs, 'users'):.0f} | {med(runs, 'rps'):,.0f} "
                f"| {med(runs, 'p50'):.0f} | {med(runs, 'p95'):.0f} | {med(runs, 'p99'):.0f} "
                f"| {sum(int(r['failures']) for r in runs)} | {audited:,} / {acked:,} "
                f"| {med(runs, 'cpu_us'):,.0f} | {med(runs, 'server_cores'):.2f} "
                f"| {med(runs, 'db_cpu_us'):,.0f} | {med(runs, 'peak_rss_mib'):.0f} "
                f"| {med(runs, 'locust_cpu_pct'):.0f} % | {each(runs, 'rps')} "
                f"| {each(runs, 'p99')} |"
            )
        lines += ["", "![Mixed scenario latency](report/mixed_latency.png)", ""]
        rate, runs = reference_mixed(mixed)
        cost = med(runs, "cpu_us")
        with_db = cost + med(runs, "db_cpu_us")
        lines += ["### CPU per mixed request vs 6× ceiling", ""]
        if base:
            verdict = "within" if cost <= BUDGET_FACTOR * base else "over"
            lines.append(
                f"- Mixed request at {int(rate):,} req/s offered: **{cost:,.0f} µs** of server "
                f"CPU; ceiling {base:,.0f} µs, budget {BUDGET_FACTOR}× = "
                f"{BUDGET_FACTOR * base:,.0f} µs → **{cost / base:.1f}× the ceiling, {verdict} "
                "budget**."
            )
        lines += [
            f"- One 500m-CPU pod: {POD_CPU} s CPU per s ÷ {cost:,.0f} µs = "
            f"**{POD_CPU / (cost / 1e6):,.0f} req/s** of the mixed scenario (Strongroom's "
            f"processes alone; counting its PostgreSQL backends as well, {with_db:,.0f} µs → "
            f"{POD_CPU / (with_db / 1e6):,.0f} req/s per 500m of CPU).",
            "",
        ]
    if "peer" in sections:
        peer = sections["peer"]["runs"]
        lines += [
            "## Peer: OpenBao transit (file audit on) vs Strongroom on 2 Granian workers",
            "",
            meta_line(sections["peer"]["meta"]),
            "",
            "| operation | req/s | p50 ms | p95 ms | p99 ms | server CPU µs/req "
            "| PostgreSQL CPU µs/req | peak RSS MiB | failed | runs: req/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, runs in peer.items():
            lines.append(
                f"| {name} | {med(runs, 'rps'):,.0f} | {med(runs, 'p50'):.1f} "
                f"| {med(runs, 'p95'):.1f} | {med(runs, 'p99'):.1f} | {med(runs, 'cpu_us'):,.0f} "
                f"| {number(med(runs, 'db_cpu_us'))} | {med(runs, 'peak_rss_mib'):.0f} "
                f"| {sum(int(r['failures']) for r in runs)} | {each(runs, 'rps')} |"
            )
        pairs = [
            ("reveal", "Strongroom reveal, 2 workers", "OpenBao transit decrypt"),
            ("create", "Strongroom create, 2 workers", "OpenBao transit encrypt"),
        ]
        lines.append("")
        for label, ours, theirs in pairs:
            a, b = med(peer[ours], "rps"), med(peer[theirs], "rps")
            paired = statistics.median(
                x["rps"] / y["rps"] for x, y in zip(peer[ours], peer[theirs], strict=True)
            )
            lines.append(
                f"- **{label} on 2 workers: {a:,.0f} req/s vs {theirs} with its file audit on: "
                f"{b:,.0f} req/s = {a / b:.2f}×** (per-run ratio, median: {paired:.2f}×); CPU "
                f"per request {med(peer[ours], 'cpu_us'):,.0f} µs (+ "
                f"{med(peer[ours], 'db_cpu_us'):,.0f} µs PostgreSQL) vs "
                f"{med(peer[theirs], 'cpu_us'):,.0f} µs."
            )
        lines += ["", "![Peer comparison](report/peer.png)", ""]
    if "soak" in sections:
        soak = sections["soak"]["result"]
        lines += [
            "## Soak (mixed scenario at 1,000 req/s offered, one Granian worker)",
            "",
            meta_line(sections["soak"]["meta"]),
            "",
            "| measure | value |",
            "|---|---:|",
            f"| duration | {soak['minutes']:g} min after a {soak['warmup_s']} s warm-up |",
            f"| achieved | {soak['rps']:,.0f} req/s ({soak['requests']:,} requests) |",
            f"| p50 / p95 / p99 | {soak['p50']:.0f} / {soak['p95']:.0f} / {soak['p99']:.0f} ms |",
            f"| failed | {soak['failures']:,} |",
            f"| audited / acknowledged | {soak['audited']:,} / {soak['acknowledged']:,} |",
            f"| server CPU | {soak['cpu_us']:,.0f} µs/req ({soak['server_cores']:.2f} cores); "
            f"PostgreSQL backends {soak['db_cpu_us']:,.0f} µs/req |",
            f"| worker RSS idle → load start | {soak['rss_idle_mib']:.0f} → "
            f"{soak['rss_start_mib']:.0f} MiB |",
            f"| worker RSS after warm-up → end | {soak['rss_after_warmup_mib']:.0f} → "
            f"{soak['rss_end_mib']:.0f} MiB "
            f"({soak['rss_end_mib'] - soak['rss_after_warmup_mib']:+.0f} MiB) |",
            f"| peak worker RSS | {soak['peak_rss_mib']:.0f} MiB |",
            "",
            "![Soak RSS](report/soak_rss.png)",
            "",
        ]
    return "\n".join(lines)


def _log_tick(value: float, _: object) -> str:
    """Plain numbers on a log axis, at 1, 2 and 5 of each decade only."""
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if leading in (1, 2, 5) else ""


def charts(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    sections = results["sections"]
    CHARTS.mkdir(exist_ok=True)
    base = ceiling_us(results)
    if "mixed" in sections:
        runs = sections["mixed"]["runs"]
        rates = sorted(runs, key=float)
        offered = [float(rate) for rate in rates]
        figure, (latency, throughput) = plt.subplots(1, 2, figsize=(12, 4.5))
        for key, colour in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
            latency.plot(offered, [med(runs[r], key) for r in rates], "o-", color=colour, label=key)
            for rate in rates:
                latency.scatter(
                    [float(rate)] * len(runs[rate]),
                    [run[key] for run in runs[rate]],
                    color=colour,
                    alpha=0.3,
                    s=12,
                )
        latency.set_yscale("log")
        latency.yaxis.set_major_formatter(FuncFormatter(_log_tick))
        latency.yaxis.set_minor_formatter(FuncFormatter(_log_tick))
        latency.set_xlabel("offered load (req/s)")
        latency.set_ylabel("latency (ms, log scale)")
        latency.set_title("Mixed scenario latency (Locust; lines: medians, dots: runs)")
        latency.legend()
        latency.grid(True, which="both", alpha=0.3)
        throughput.plot(offered, offered, "--", color="grey", label="offered")
        throughput.plot(offered, [med(runs[r], "rps") for r in rates], "o-", label="achieved")
        throughput.set_xlabel("offered load (req/s)")
        throughput.set_ylabel("throughput (req/s)")
        throughput.set_title("Achieved vs offered throughput")
        throughput.legend()
        throughput.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(CHARTS / "mixed_latency.png", dpi=110)
        plt.close(figure)
    if "endpoints" in sections:
        floors = dict(sections["floor"]["runs"]) if "floor" in sections else {}
        runs = {**floors, **sections["endpoints"]["runs"]}
        if "mixed" in sections:
            rate, mixed_runs = reference_mixed(sections["mixed"])
            runs[f"mixed @ {int(rate)} req/s"] = mixed_runs
        names = list(runs)
        short = {name: f"floor:\n{rung}" for rung, name in FLOORS.items()}
        labels = [short.get(n, n).replace(" @ ", "\n@ ") for n in names]
        server = [med(runs[n], "cpu_us") for n in names]
        database = [0.0 if math.isnan(d) else d for d in (med(runs[n], "db_cpu_us") for n in names)]
        colours = ["tab:grey" if n in floors else "tab:blue" for n in names]
        figure, axes = plt.subplots(figsize=(12, 5))
        axes.bar(labels, server, color=colours, label="Granian processes (grey: floors)")
        axes.bar(
            labels,
            database,
            bottom=server,
            color=colours,
            alpha=0.35,
            hatch="//",
            label="their PostgreSQL backends",
        )
        if base:
            axes.axhline(
                base, color="black", linestyle=":", label=f"hello-world ceiling ({base:.0f} µs)"
            )
            axes.axhline(
                BUDGET_FACTOR * base,
                color="tab:red",
                linestyle="--",
                label=f"{BUDGET_FACTOR}× ceiling budget ({BUDGET_FACTOR * base:.0f} µs)",
            )
        axes.set_ylabel("CPU per request (µs)")
        axes.set_xlabel("floor or endpoint")
        axes.set_title("Server CPU per request, one Granian worker (medians)")
        axes.legend()
        axes.grid(True, axis="y", alpha=0.3)
        figure.tight_layout()
        figure.savefig(CHARTS / "cpu_per_request.png", dpi=110)
        plt.close(figure)
    if "peer" in sections:
        runs = sections["peer"]["runs"]
        names = list(runs)
        labels = [
            n.replace("OpenBao transit ", "OpenBao\n").replace("Strongroom ", "Strongroom\n")
            for n in names
        ]
        colours = ["tab:purple" if n.startswith("OpenBao") else "tab:blue" for n in names]
        figure, (rate, cost) = plt.subplots(1, 2, figsize=(12, 4.5))
        rate.bar(labels, [med(runs[n], "rps") for n in names], color=colours)
        rate.set_ylabel("throughput (req/s)")
        rate.set_title("Closed-loop throughput, 32 connections (medians)")
        cost.bar(labels, [med(runs[n], "cpu_us") for n in names], color=colours, label="server")
        cost.bar(
            labels,
            [0 if math.isnan(v) else v for v in (med(runs[n], "db_cpu_us") for n in names)],
            bottom=[med(runs[n], "cpu_us") for n in names],
            color="tab:blue",
            alpha=0.35,
            hatch="//",
            label="PostgreSQL backends",
        )
        cost.set_ylabel("CPU per request (µs)")
        cost.set_title("CPU per request (medians)")
        cost.legend()
        for axes in (rate, cost):
            axes.set_xlabel("operation")
            axes.grid(True, axis="y", alpha=0.3)
        figure.tight_layout()
        figure.savefig(CHARTS / "peer.png", dpi=110)
        plt.close(figure)
    if "soak" in sections:
        series = sections["soak"]["series"]
        warmup = sections["soak"]["result"]["warmup_s"]
        figure, axes = plt.subplots(figsize=(10, 4.5))
        axes.plot(
            [t / 60 for t, _ in series],
            [rss / MIB for _, rss in series],
            ".-",
            label="Granian worker VmRSS",
        )
        axes.axvline(0, color="grey", linestyle=":", label="load starts")
        axes.axvline(warmup / 60, color="grey", linestyle="--", label="warm-up ends")
        axes.set_xlabel("time since the load started (minutes)")
        axes.set_ylabel("worker RSS (MiB)")
        axes.set_title("Soak: mixed scenario at 1,000 req/s offered, worker memory every 5 s")
        axes.legend()
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(CHARTS / "soak_rss.png", dpi=110)
        plt.close(figure)


def write_report(results: dict[str, Any]) -> None:
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = REPORT.read_text() if REPORT.exists() else f"{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    REPORT.write_text(f"{head}{start}\n{render(results)}\n{end}{tail}")


# -- main ----------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> tuple[Options, set[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, help="interleaved runs per configuration (3)")
    parser.add_argument("--quick", action="store_true", help="a short smoke pass")
    parser.add_argument("--soak-minutes", type=float, help="soak duration (10; --quick 1)")
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args(argv)
    sections = set(args.only.split(",")) if args.only else set(SECTIONS)
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.skip_soak:
        sections.discard("soak")
    quick = args.quick
    options = Options(
        runs=args.runs or (1 if quick else 3),
        quick=quick,
        connections=args.connections,
        seconds=3.0 if quick else 8.0,
        warmup=1.0 if quick else 3.0,
        rates=[250, 1000] if quick else [250, 500, 1000, 1500, 2000],
        mixed_warmup=6 if quick else 10,
        mixed_seconds=10 if quick else 30,
        soak_minutes=args.soak_minutes or (1.0 if quick else 10.0),
        records=500 if quick else 2000,
        dsn=args.dsn,
        redis=args.redis,
    )
    return options, sections


def main() -> int:
    options, sections = parse()
    began = time.monotonic()
    results: dict[str, Any] = (
        json.loads(RESULTS.read_text()) if RESULTS.exists() else {"sections": {}}
    )
    results["machine"] = machine(options)
    results["command"] = shlex.join([".venv/bin/python", "benchmarks/suite.py", *sys.argv[1:]])
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-suite-"))
    cache = redis.Redis.from_url(options.redis)
    bench = Bench(options, workdir)

    def record(
        name: str, started: float, method: str, data: dict[str, Any], runs: int = options.runs
    ) -> None:
        meta = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "runs": runs,
            "quick": options.quick,
            "elapsed_s": time.monotonic() - started,
            "method": method,
        }
        results["sections"][name] = {"meta": meta, **data}

    try:
        cache.flushdb()
        bench.prepare()
        closed = [s for s in ("ceiling", "floor", "endpoints", "peer") if s in sections]
        for group in (["ceiling", "floor", "endpoints"], ["peer"]):
            chosen = targets(bench, set(group) & set(closed))
            if not chosen:
                continue
            started = time.monotonic()
            runs = closed_loop_section(bench, chosen, options)
            method = (
                f"closed loop, {options.connections} keep-alive connections, "
                f"{options.warmup:g} s warm-up + {options.seconds:g} s measured per run, "
                "a fresh server per configuration, interleaved"
            )
            for name in group:
                mine = {t.name: runs[t.name] for t in chosen if t.section == name}
                if mine:
                    record(name, started, method, {"runs": mine})
        if "mixed" in sections:
            started = time.monotonic()
            runs = mixed_section(bench, options)
            method = (
                f"Locust headless, {options.mixed_warmup} s ramp-up/warm-up + "
                f"{options.mixed_seconds} s per rate, a fresh server per rate, rates interleaved"
            )
            record("mixed", started, method, {"runs": runs})
        if "soak" in sections:
            started = time.monotonic()
            soak = soak_section(bench, options)
            record("soak", started, "Locust headless, RSS sampled every 5 s", soak, runs=1)
    finally:
        asyncio.run(gate.drop(options.dsn, bench.databases))
        cache.flushdb()
        cache.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.monotonic() - began
    CHARTS.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    charts(results)
    write_report(results)
    print(f"\nwrote {REPORT.relative_to(ROOT)} in {results['elapsed_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
