"""Accuracy on the generated corpus: every planted value found, no near-miss reported."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import Impl

CORPUS_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "corpus.py"
LINES = 4000


def load_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strongroom_bench_corpus", CORPUS_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


corpus = load_corpus()


@pytest.fixture(scope="module")
def lines() -> list:  # type: ignore[type-arg]
    return corpus.lines(LINES)


def test_corpus_is_deterministic() -> None:
    assert corpus.lines(50) == corpus.lines(50)
    assert corpus.lines(50, seed=1) != corpus.lines(50)


def test_corpus_plants_every_kind(lines: list) -> None:  # type: ignore[type-arg]
    kinds = Counter(kind for line in lines for kind, _, _ in line.planted)
    assert set(kinds) == {"EMAIL", "CARD", "SSN", "PHONE", "IBAN", "IPV4", "IPV6", "CREDENTIAL"}
    assert min(kinds.values()) >= 100


def test_recall_is_total(impl: Impl, lines: list) -> None:  # type: ignore[type-arg]
    missed = [
        (line.text, span)
        for line in lines
        for span in line.planted
        if span not in impl.scan(line.text)
    ]
    assert missed == []


def test_no_finding_outside_planted_values(impl: Impl, lines: list) -> None:  # type: ignore[type-arg]
    extra = [
        (line.text, found)
        for line in lines
        for found in impl.scan(line.text)
        if found not in line.planted
    ]
    assert extra == []


def test_near_misses_are_present(lines: list) -> None:  # type: ignore[type-arg]
    # The precision test above means something only if near-misses were planted.
    assert sum(1 for line in lines if not line.planted) > LINES // 2
