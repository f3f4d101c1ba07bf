"""Which implementation loads, decided by the environment in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import REQUIRE_NATIVE, load_native

PROBE = "import strongroom.privacy as p; print(p.IMPLEMENTATION, p._select.scan.__module__)"


def run_probe(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_require_native_loads_the_compiled_module() -> None:
    load_native()  # skips, or fails under STRONGROOM_REQUIRE_NATIVE=1, when it is not built
    result = run_probe(STRONGROOM_REQUIRE_NATIVE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["native", "strongroom.privacy._scan_native"]


def test_no_native_forces_the_pure_twin() -> None:
    result = run_probe(STRONGROOM_NO_NATIVE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "strongroom.privacy._scan_py"]


def test_contradictory_switches_refuse_to_import() -> None:
    result = run_probe(STRONGROOM_NO_NATIVE="1", STRONGROOM_REQUIRE_NATIVE="1")
    assert result.returncode != 0
    assert "ImportError" in result.stderr


def test_this_process_runs_what_the_environment_asks() -> None:
    import strongroom.privacy as privacy

    if os.environ.get("STRONGROOM_NO_NATIVE") == "1":
        expected = "python"
    else:
        try:
            import strongroom.privacy._scan_native  # noqa: F401

            expected = "native"
        except ImportError:
            expected = "python"
    assert expected == privacy.IMPLEMENTATION
    if REQUIRE_NATIVE:
        assert privacy.IMPLEMENTATION == "native"
