"""Audit write throughput and latency: raw COPY, the group-commit writer, one commit per event.

    python benchmarks/bench_audit.py [--dsn URL] [--runs 3] [--report PATH]

Creates a scratch database on the server of ``--dsn`` (default: the local PostgreSQL), migrates
it, measures, drops it. Every measurement uses ``synchronous_commit = on``. Events are built
before the clock starts; turning them into rows (``as_row``) is timed everywhere, because every
writer has to do it. Prints a table and writes it, with the machine description, into the results
block of ``benchmarks/AUDIT.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from strongroom.audit.events import COLUMNS, AuditEvent
from strongroom.audit.group_commit import GroupCommitWriter, connector
from strongroom.audit.store import insert_event
from strongroom.store.migrate import migrate

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH_SIZE = 512
COPY_EVENTS = 200_000
WRITER_EVENTS = 200_000
EMITTERS = 2_000
SINGLE_SECONDS = 5.0
OPEN_LOOP_RATE = 1_000
OPEN_LOOP_SECONDS = 10.0


def events(count: int) -> list[AuditEvent]:
    tenant = str(uuid.uuid4())
    return [
        AuditEvent(
            action="record.reveal",
            outcome="success",
            tenant_id=tenant,
            actor=f"key-{n % 50}",
            resource=f"customers/records/{uuid.uuid4()}",
            subject_ref=secrets.token_bytes(32),
            fields=("email", "card"),
            purpose="support",
            request_id=f"req-{n}",
            trace_id=secrets.token_hex(16),
            client="10.0.0.7",
        )
        for n in range(count)
    ]


async def fresh(connection: asyncpg.Connection) -> None:
    """Start each measurement from an empty table and a clean WAL position."""
    await connection.execute("TRUNCATE audit_events RESTART IDENTITY")
    await connection.execute("CHECKPOINT")


async def raw_copy(dsn: str, batch: list[AuditEvent]) -> float:
    """(a) copy_records_to_table straight into audit_events, one transaction per batch."""
    connection = await asyncpg.connect(dsn)
    try:
        await fresh(connection)
        started = time.perf_counter()
        for start in range(0, len(batch), BATCH_SIZE):
            async with connection.transaction():
                await connection.execute("SET LOCAL synchronous_commit = on")
                await connection.copy_records_to_table(
                    "audit_events",
                    records=[e.as_row() for e in batch[start : start + BATCH_SIZE]],
                    columns=COLUMNS,
                )
        elapsed = time.perf_counter() - started
        assert await connection.fetchval("SELECT count(*) FROM audit_events") == len(batch)
    finally:
        await connection.close()
    return len(batch) / elapsed


async def group_commit(dsn: str, batch: list[AuditEvent]) -> tuple[float, float]:
    """(b) GroupCommitWriter with EMITTERS tasks each emitting its share in a loop."""
    writer = GroupCommitWriter(connector(dsn), timeout=30.0, batch_size=BATCH_SIZE)
    connection = await asyncpg.connect(dsn)
    try:
        await fresh(connection)
        await writer.start()
        share = len(batch) // EMITTERS

        async def emitter(mine: list[AuditEvent]) -> None:
            for e in mine:
                await writer.emit(e)

        started = time.perf_counter()
        await asyncio.gather(
            *(emitter(batch[i * share : (i + 1) * share]) for i in range(EMITTERS))
        )
        elapsed = time.perf_counter() - started
        written = share * EMITTERS
        assert await connection.fetchval("SELECT count(*) FROM audit_events") == written
        mean_batch = writer.events_written / writer.batches
    finally:
        await writer.close()
        await connection.close()
    return written / elapsed, mean_batch


async def single_commits(dsn: str, batch: list[AuditEvent]) -> float:
    """(c) one INSERT and one commit per event, sequential (autocommit: one round trip each)."""
    connection = await asyncpg.connect(dsn, server_settings={"synchronous_commit": "on"})
    try:
        await fresh(connection)
        count = 0
        started = time.perf_counter()
        deadline = started + SINGLE_SECONDS
        while time.perf_counter() < deadline:
            await insert_event(connection, batch[count])
            count += 1
        elapsed = time.perf_counter() - started
        assert await connection.fetchval("SELECT count(*) FROM audit_events") == count
    finally:
        await connection.close()
    return count / elapsed


class DirectAuditWriter:
    """The simple design GroupCommitWriter replaced, kept here as a point of comparison: one
    pooled transaction per event with ``synchronous_commit = on``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def emit(self, event: AuditEvent) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SET LOCAL synchronous_commit = on")
            await insert_event(connection, event)


async def direct_writer(dsn: str, batch: list[AuditEvent]) -> float:
    """(c') the writer GroupCommitWriter replaces: a pooled transaction per event, sequential."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    writer = DirectAuditWriter(pool)
    try:
        async with pool.acquire() as connection:
            await fresh(connection)
        count = 0
        started = time.perf_counter()
        deadline = started + SINGLE_SECONDS
        while time.perf_counter() < deadline:
            await writer.emit(batch[count])
            count += 1
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return count / elapsed


async def open_loop(dsn: str, batch: list[AuditEvent]) -> tuple[list[float], list[float]]:
    """(d) emits scheduled at a fixed rate whatever the writer does. Two latencies per event:
    ``emit`` call to return (what the writer adds to a request), and scheduled instant to return
    (adds the event loop's lag, so a stalled loop cannot hide queueing: no coordinated
    omission)."""
    writer = GroupCommitWriter(connector(dsn), timeout=30.0, batch_size=BATCH_SIZE)
    connection = await asyncpg.connect(dsn)
    latencies: list[float] = []
    from_schedule: list[float] = []
    try:
        await fresh(connection)
        await writer.start()
        loop = asyncio.get_running_loop()
        total = int(OPEN_LOOP_RATE * OPEN_LOOP_SECONDS)
        interval = 1.0 / OPEN_LOOP_RATE

        async def one(e: AuditEvent, scheduled: float) -> None:
            called = loop.time()
            await writer.emit(e)
            returned = loop.time()
            latencies.append(returned - called)
            from_schedule.append(returned - scheduled)

        tasks = []
        origin = loop.time() + 0.05
        sent = 0
        while sent < total:
            now = loop.time()
            while sent < total and origin + sent * interval <= now:
                tasks.append(asyncio.create_task(one(batch[sent], origin + sent * interval)))
                sent += 1
            await asyncio.sleep(max(0.0, origin + sent * interval - loop.time()))
        await asyncio.gather(*tasks)
    finally:
        await writer.close()
        await connection.close()
    return latencies, from_schedule


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {model}; {platform.system()} {platform.release()}"


async def measure(dsn: str, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        key: []
        for key in (
            "copy",
            "writer",
            "batch",
            "single",
            "direct",
            "p50",
            "p95",
            "p99",
            "s50",
            "s95",
            "s99",
        )
    }
    for run in range(1, runs + 1):
        a = await raw_copy(dsn, events(COPY_EVENTS))
        b, mean_batch = await group_commit(dsn, events(WRITER_EVENTS))
        c = await single_commits(dsn, events(int(SINGLE_SECONDS * 20_000)))
        c_direct = await direct_writer(dsn, events(int(SINGLE_SECONDS * 20_000)))
        d, d_scheduled = await open_loop(dsn, events(int(OPEN_LOOP_RATE * OPEN_LOOP_SECONDS)))
        results["copy"].append(a)
        results["writer"].append(b)
        results["batch"].append(mean_batch)
        results["single"].append(c)
        results["direct"].append(c_direct)
        for key, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
            results[key].append(percentile(d, q) * 1000)
            results["s" + key[1:]].append(percentile(d_scheduled, q) * 1000)
        print(
            f"run {run}: copy {a:,.0f}/s  writer {b:,.0f}/s (mean batch {mean_batch:.0f})  "
            f"single {c:,.0f}/s  direct {c_direct:,.0f}/s  emit p50 {results['p50'][-1]:.2f} ms "
            f"p95 {results['p95'][-1]:.2f} ms p99 {results['p99'][-1]:.2f} ms "
            f"(from schedule p50 {results['s50'][-1]:.2f} ms)",
            flush=True,
        )
    return results


def table(results: dict[str, list[float]]) -> str:
    med = {key: statistics.median(values) for key, values in results.items()}

    def runs(key: str, fmt: str) -> str:
        return " / ".join(format(v, fmt) for v in results[key])

    per_run = " / ".join(
        f"{b / c:.1f} ×" for b, c in zip(results["writer"], results["single"], strict=True)
    )
    ratio_copy = med["writer"] / med["copy"]
    ratio_single = med["writer"] / med["single"]
    verdict = {True: "met", False: "MISSED"}
    lines = [
        "| measurement | median | runs | target |",
        "|---|---:|---|---|",
        f"| (a) raw `copy_records_to_table`, {BATCH_SIZE}/batch, 1 tx/batch | "
        f"{med['copy']:,.0f} rows/s | {runs('copy', ',.0f')} | |",
        f"| (b) GroupCommitWriter, {EMITTERS} concurrent emitters | "
        f"{med['writer']:,.0f} rows/s | {runs('writer', ',.0f')} | "
        f"≥ 50 % of (a): {ratio_copy:.0%} — {verdict[ratio_copy >= 0.5]} |",
        f"| (b) mean batch size | {med['batch']:,.0f} | {runs('batch', ',.0f')} | |",
        f"| (c) one INSERT + commit per event, sequential | "
        f"{med['single']:,.0f} rows/s | {runs('single', ',.0f')} | "
        f"(b) ≥ 20 × (c): {ratio_single:.1f} × — {verdict[ratio_single >= 20]} |",
        f"| (c') DirectAuditWriter (the writer replaced), sequential | "
        f"{med['direct']:,.0f} rows/s | {runs('direct', ',.0f')} | |",
        f"| (b) ÷ (c) per run | | {per_run} | |",
        f"| (d) emit latency at {OPEN_LOOP_RATE:,}/s offered, p50 | "
        f"{med['p50']:.2f} ms | {runs('p50', '.2f')} | "
        f"≤ 5 ms — {verdict[med['p50'] <= 5]} |",
        f"| (d) p95 | {med['p95']:.2f} ms | {runs('p95', '.2f')} | |",
        f"| (d) p99 | {med['p99']:.2f} ms | {runs('p99', '.2f')} | |",
        f"| (d) from the scheduled instant (adds loop lag), p50 | "
        f"{med['s50']:.2f} ms | {runs('s50', '.2f')} | |",
        f"| (d) from the scheduled instant, p95 | {med['s95']:.2f} ms | {runs('s95', '.2f')} | |",
        f"| (d) from the scheduled instant, p99 | {med['s99']:.2f} ms | {runs('s99', '.2f')} | |",
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="a maintenance database on the server")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--report",
        type=Path,
        default=Path(__file__).with_name("AUDIT.md"),
        help="Markdown report to update (default: benchmarks/AUDIT.md)",
    )
    options = parser.parse_args()

    name = f"sr_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(options.dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        server = await admin.fetchval("SHOW server_version")
        fsync = await admin.fetchval("SHOW fsync")
        sync_method = await admin.fetchval("SHOW wal_sync_method")
    finally:
        await admin.close()
    head, sep, query = options.dsn.partition("?")
    dsn = head.rsplit("/", 1)[0] + "/" + name + sep + query
    try:
        connection = await asyncpg.connect(dsn)
        try:
            await migrate(connection, "data")
        finally:
            await connection.close()
        results = await measure(dsn, options.runs)
    finally:
        admin = await asyncpg.connect(options.dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    described = (
        f"- Machine: {machine()}\n"
        f"- PostgreSQL {server} on the same machine (fsync={fsync}, "
        f"wal_sync_method={sync_method}); Python {platform.python_version()}, "
        f"asyncpg {asyncpg.__version__}\n"
        f"- Command: `python benchmarks/bench_audit.py{' '.join(['', *sys.argv[1:]])}`\n"
        f"- Medians of {options.runs} runs; each run measures (a), (b), (c), (c'), (d) in turn\n"
    )
    rendered = table(results)
    print()
    print(described)
    print(rendered)
    write_report(options.report, described + "\n" + rendered + "\n")


START, END = "<!-- results:start -->", "<!-- results:end -->"


def write_report(path: Path, results: str) -> None:
    """Replace the results block of the report, keeping the prose around it."""
    block = f"{START}\n{results}{END}"
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = f"# Audit writer benchmark\n\n{block}\n"
    path.write_text(text)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    asyncio.run(main())
