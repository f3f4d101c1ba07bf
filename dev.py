#!/usr/bin/env python3
"""One entry point for a fresh machine that has only Python 3.11+ and a C compiler.

    python3 dev.py serve      run the service (embedded PostgreSQL and Redis unless URLs are set)
    python3 dev.py test       run the whole test suite
    python3 dev.py check      ruff (lint + format) and mypy
    python3 dev.py bench      the privacy micro-benchmarks
    python3 dev.py gate       the load gate (loadtests/gate.py: Locust against a real service)

Each creates ``.venv`` on first use and installs the project into it (compiling the native
hot path); it reinstalls only when pyproject.toml, setup.py or the native sources change.
Extra arguments are passed on: ``python3 dev.py test -k reveal``,
``python3 dev.py serve --port 9000``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".strongroom-install"


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml", ROOT / "setup.py", *sorted((ROOT / "native").glob("*.p*"))]
    for path in files:
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_installed(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python3
        sys.exit("Strongroom needs Python 3.11 or newer")
    if not PYTHON.exists():
        print("creating .venv ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # The stamp holds the inputs' digest and the extras installed: a command needing fewer
    # extras than the last install (``check`` after ``gate``) does not reinstall.
    digest = _inputs_digest()
    wanted = set(extras.split(","))
    if STAMP.exists():
        stamped_digest, _, stamped_extras = STAMP.read_text().partition("\n")
        if stamped_digest == digest:
            installed = set(filter(None, stamped_extras.split(",")))
            if wanted <= installed:
                return
            wanted |= installed  # keep what an earlier command installed
    extras = ",".join(sorted(wanted))
    print(
        f"installing strongroom[{extras}] into .venv (first run takes a minute) ...",
        file=sys.stderr,
    )
    quiet = ["-q"] if not os.environ.get("CI") else []
    subprocess.run([str(PYTHON), "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", *quiet, "-e", f".[{extras}]"], check=True, cwd=ROOT
    )
    STAMP.write_text(f"{digest}\n{extras}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "check", "bench", "gate"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        ensure_installed("dev")
        os.execv(str(BIN / "strongroom"), [str(BIN / "strongroom"), "serve", *rest])
    if command == "test":
        ensure_installed("dev")
        return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)
    if command == "check":
        ensure_installed("dev")
        steps = [
            [str(BIN / "ruff"), "check", "src", "tests", "benchmarks", "dev.py"],
            [str(BIN / "ruff"), "format", "--check", "src", "tests", "benchmarks", "dev.py"],
            [str(BIN / "mypy")],
        ]
        return max(subprocess.call(step, cwd=ROOT) for step in steps)
    if command == "gate":
        ensure_installed("dev,load")
        return subprocess.call([str(PYTHON), "loadtests/gate.py", *rest], cwd=ROOT)
    ensure_installed("dev,bench")
    return subprocess.call([str(PYTHON), "benchmarks/bench_privacy.py", *rest], cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
