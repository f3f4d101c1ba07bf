"""Fixtures that run every privacy test against both implementations."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pytest

REQUIRE_NATIVE = os.environ.get("STRONGROOM_REQUIRE_NATIVE", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}


@dataclass(frozen=True)
class Impl:
    """One implementation of the privacy hot path, as the selector would expose it."""

    name: str
    scan: Callable[[str], list[tuple[str, int, int]]]
    redact_labels: Callable[[str], str]
    mask: Callable[..., str]


def _load(scan_module: str, mask_module: str) -> tuple[ModuleType, ModuleType]:
    return (
        importlib.import_module(f"strongroom.privacy.{scan_module}"),
        importlib.import_module(f"strongroom.privacy.{mask_module}"),
    )


def load_native() -> tuple[ModuleType, ModuleType]:
    """The compiled modules; a missing build fails under STRONGROOM_REQUIRE_NATIVE=1, else skips."""
    try:
        return _load("_scan_native", "_masks_native")
    except ImportError as exc:
        if REQUIRE_NATIVE:
            pytest.fail(f"STRONGROOM_REQUIRE_NATIVE=1 but the native module is missing: {exc}")
        pytest.skip(f"native module not built (run `pip install -e .`): {exc}")


_PURE_SCAN, _PURE_MASKS = _load("_scan_py", "_masks_py")
PURE = Impl("python", _PURE_SCAN.scan, _PURE_SCAN.redact_labels, _PURE_MASKS.mask)


def native_impl() -> Impl:
    scan_mod, mask_mod = load_native()
    return Impl("native", scan_mod.scan, scan_mod.redact_labels, mask_mod.mask)


@pytest.fixture(params=["python", "native"])
def impl(request: pytest.FixtureRequest) -> Impl:
    """Each implementation in turn."""
    return PURE if request.param == "python" else native_impl()


@pytest.fixture
def native() -> Impl:
    """The compiled implementation (skipped or failed as ``load_native`` decides)."""
    return native_impl()
