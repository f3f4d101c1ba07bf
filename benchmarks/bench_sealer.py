"""How long the sealer takes to drain a backlog: N audit events written by one transaction into a
fresh database that PostgreSQL has not analyzed (as after a bulk load or a restore), then the
sealer's rounds until nothing is left.

    .venv/bin/python benchmarks/bench_sealer.py --events 1000000 [--dsn URL]

To compare with another version, run it with that checkout's code first on the path:
``PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/bench_sealer.py`` (the databases are
migrated by the code that is imported). Prints the wall time and the events sealed per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

import strongroom
from strongroom.audit.sealer import AuditSealer
from strongroom.audit.signing import Ed25519Signer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "loadtests"))
import gate  # the folder is put on the path above


async def main(events: int, dsn: str) -> None:
    names, made = await gate.prepare(dsn)  # migrated data and key-store databases
    try:
        connection = await asyncpg.connect(made["data"])
        try:
            await connection.execute(
                "INSERT INTO audit_events (id, occurred_at, tenant_id, action, outcome) "
                "SELECT gen_random_uuid(), now(), gen_random_uuid(), 'record.read', 'success' "
                "FROM generate_series(1, $1)",
                events,
            )
        finally:
            await connection.close()
        signer = Ed25519Signer.from_master_key(os.urandom(32))
        sealer = AuditSealer(made["data"], signer, checkpoint_every=10**9)
        started, sealed = time.monotonic(), 0
        try:
            while (count := await sealer.step()) > 0:
                sealed += count
        finally:
            await sealer.stop()
        elapsed = time.monotonic() - started
        print(
            f"{strongroom.__file__}: sealed {sealed:,} of {events:,} events in {elapsed:.1f} s "
            f"({sealed / elapsed:,.0f} events/s)"
        )
    finally:
        await gate.drop(dsn, names)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.dsn))
