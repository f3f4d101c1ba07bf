"""Run the load gate in two checkouts, alternately, and compare the CPU each spends per request.

    python benchmarks/ab_gate.py --base /tmp/before --new . --rounds 3 -- \\
        --rps 1000 --duration 40 --warmup 15

Each checkout runs ``python3 dev.py gate`` with the arguments after ``--`` (it installs its own
``.venv`` on first use); the order alternates from round to round (base, new, then new, base), so
a machine that slows down during the comparison does not favour either side. While a gate runs,
the CPU time (utime + stime from ``/proc``) of every PostgreSQL process, the Granian worker and
Locust is sampled twice a second; a process counts from when it was first seen (or from zero if
it started during the run) to when it was last seen. One JSON line per run: the gate's aggregate
row (requests, failures, req/s, p50, p95, p99 in ms), its exit status, CPU seconds per process
kind, and PostgreSQL's and the worker's CPU per audited request in microseconds. The PostgreSQL
figure counts every process of the server, so run nothing else against it meanwhile.

To make the "before" checkout: ``git worktree add /tmp/before <commit>``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import procfs


def processes() -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds) for PostgreSQL, Granian and Locust processes."""
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = procfs.stat(entry)
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if stat is None:
            continue
        name, fields = stat
        seconds = procfs.cpu_seconds(fields)
        if name.startswith("postgres"):
            kind = "pg"
        elif "granian" in command:
            kind = "worker"
        elif "locust" in command:
            kind = "locust"
        else:
            continue
        found[int(entry)] = (kind, seconds)
    return found


def run(label: str, checkout: Path, gate_args: list[str]) -> dict[str, object]:
    """One gate run in ``checkout``, with the CPU of its processes."""
    before = processes()
    last: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            last.update(processes())
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gate = subprocess.run(
        ["python3", "dev.py", "gate", *gate_args],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    done.set()
    sampler.join()
    cpu = {"pg": 0.0, "worker": 0.0, "locust": 0.0}
    for pid, (kind, seconds) in last.items():
        cpu[kind] += seconds - (before[pid][1] if pid in before else 0.0)
    aggregate = [
        line.split()[1:]
        for line in gate.stdout.splitlines()
        if line.startswith("Aggregated") and len(line.split()) == 7
    ]
    audited = re.search(r"(\d+) events for (\d+) requests", gate.stdout)
    row: dict[str, object] = {
        "label": label,
        "aggregate": aggregate[-1] if aggregate else None,
        "exit": gate.returncode,
        **{f"{kind}_cpu_s": round(seconds, 1) for kind, seconds in cpu.items()},
    }
    if audited:
        requests = int(audited.group(2))
        row["audited"] = requests
        row["pg_us_per_audited"] = round(cpu["pg"] / requests * 1e6)
        row["worker_us_per_audited"] = round(cpu["worker"] / requests * 1e6)
    else:
        row["stderr"] = gate.stderr[-2000:]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument("--new", type=Path, default=Path.cwd(), help="the checkout under test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("gate_args", nargs=argparse.REMAINDER, help="after --: the gate's own")
    args = parser.parse_args()
    gate_args = [arg for arg in args.gate_args if arg != "--"]
    for round_number in range(args.rounds):
        order = [("base", args.base), ("new", args.new)]
        if round_number % 2:
            order.reverse()
        for label, checkout in order:
            print(json.dumps(run(label, checkout.resolve(), gate_args)), flush=True)


if __name__ == "__main__":
    main()
