"""pytest-benchmark suite for the privacy hot path (``pytest benchmarks/``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
import re_baseline

from strongroom.privacy import _masks_py, _scan_py

native_scan = pytest.importorskip("strongroom.privacy._scan_native")
native_masks = pytest.importorskip("strongroom.privacy._masks_native")

TEXT = corpus.mixed_corpus(1 << 18)
CLEAN_40 = "GET /v1/records/list 200 in 3 ms (cache)"

REDACTORS: dict[str, Callable[[str], str]] = {
    "native": native_scan.redact_labels,
    "pure": _scan_py.redact_labels,
    "re": re_baseline.redact,
}


@pytest.mark.parametrize("name", list(REDACTORS))
def test_redact_mixed_corpus(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.extra_info["bytes"] = len(TEXT.encode())
    benchmark(REDACTORS[name], TEXT)


@pytest.mark.parametrize("name", list(REDACTORS))
def test_redact_clean_40_bytes(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(REDACTORS[name], CLEAN_40) == CLEAN_40


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "john.doe@example.com"),
        ("card", "4242 4242 4242 4242"),
        ("ssn", "123-45-6789"),
        ("phone", "+1 (415) 555-0134"),
        ("iban", "DE89 3704 0044 0532 0130 00"),
        ("name", "John Ronald Tolkien"),
        ("text", "a generic text value"),
    ],
)
@pytest.mark.parametrize("impl", ["native", "pure"])
def test_mask(benchmark, impl: str, kind: str, value: str) -> None:  # type: ignore[no-untyped-def]
    fn = native_masks.mask if impl == "native" else _masks_py.mask
    benchmark(fn, kind, value)
