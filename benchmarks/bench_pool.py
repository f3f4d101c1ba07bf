"""What asyncpg's pool adds to a query: CPU per query through ``Pool.fetchrow`` against the same
query on the same number of connections handed out by a plain ``asyncio.Queue``.

    .venv/bin/python benchmarks/bench_pool.py [--rounds 5] [--seconds 4] [--dsn URL]

Both sides run in this process on uvloop, 32 tasks sharing 20 connections (the load and pool
size of the suite's closed-loop runs), the pool made as Strongroom makes its own
(``strongroom.store.pool.create_pool``: no reset query, JSON through orjson). The query is a
one-row ``SELECT`` that touches no table, so what differs is the pool's acquire and release:
the holder and proxy objects, the inactivity timer, and the task that ``asyncio.shield`` makes
for every release. Rounds alternate the order; the figure is this process's CPU time (user +
system) per query, median of the rounds, and the per-round ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
import uvloop

from strongroom.settings import Settings
from strongroom.store.pool import create_pool

QUERY = "SELECT 1 AS id, 'x'::text AS name, now() AS at"
TASKS = 32
CONNECTIONS = 20


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(query: Callable[[], Awaitable[object]], seconds: float) -> float:
    """CPU seconds per query while ``TASKS`` tasks run ``query`` for ``seconds``."""
    done = 0
    stop = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < stop:
            await query()
            done += 1

    started = _cpu()
    await asyncio.gather(*(loop() for _ in range(TASKS)))
    return (_cpu() - started) / done


async def pooled(dsn: str, seconds: float) -> float:
    settings = Settings.from_env(
        {"STRONGROOM_DB_POOL_MIN": str(CONNECTIONS), "STRONGROOM_DB_POOL_MAX": str(CONNECTIONS)}
    )
    pool = await create_pool(dsn, settings, application="bench-pool")
    try:
        return await _measure(lambda: pool.fetchrow(QUERY), seconds)
    finally:
        await pool.close()


async def queued(dsn: str, seconds: float) -> float:
    connections = [await asyncpg.connect(dsn) for _ in range(CONNECTIONS)]
    free: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)

    async def query() -> object:
        connection = await free.get()
        try:
            return await connection.fetchrow(QUERY)
        finally:
            free.put_nowait(connection)

    try:
        return await _measure(query, seconds)
    finally:
        for connection in connections:
            await connection.close()


async def main(rounds: int, seconds: float, dsn: str) -> None:
    sides = {"asyncpg Pool.fetchrow": pooled, "a queue of connections": queued}
    results: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(rounds):
        order = list(sides) if round_ % 2 == 0 else list(sides)[::-1]
        for name in order:
            results[name].append(await sides[name](dsn, seconds) * 1e6)
        print(
            f"round {round_ + 1}: "
            + ", ".join(f"{name} {results[name][-1]:.0f} µs" for name in sides),
            flush=True,
        )
    pool, plain = results.values()
    print(f"\nCPU per query (median of {rounds} rounds of {seconds:g} s):")
    for name, figures in results.items():
        print(f"  {name:>24}: {statistics.median(figures):6.1f} µs")
    ratio = statistics.median(a / b for a, b in zip(pool, plain, strict=True))
    print(f"  pool / queue, per round: {ratio:.2f}× (median)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    uvloop.run(main(args.rounds, args.seconds, args.dsn))
