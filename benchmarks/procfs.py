"""What the benchmarks read about other processes from ``/proc``: name, CPU time, RSS."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid: int | str) -> tuple[str, list[str]] | None:
    """(command name, fields after it) of /proc/<pid>/stat; None once the process is gone.

    ``fields[3]`` is the process group, ``fields[11]`` and ``fields[12]`` utime and stime."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    return head.partition("(")[2], tail.split()


def cpu_seconds(fields: list[str]) -> float:
    """utime + stime, in seconds, from :func:`stat`'s fields."""
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    """VmRSS of a process in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
