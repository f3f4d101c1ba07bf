"""Side-by-side throughput of the native scanner, its pure twin and a ``re`` baseline.

Run ``python benchmarks/bench_privacy.py``; every figure comes from the same run, medians over
several repeats, timed in process CPU time (so other load on the machine does not count).
MB/s counts UTF-8 bytes of input redacted per second.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
import re_baseline  # noqa: E402

from strongroom.privacy import _masks_py, _scan_py  # noqa: E402

try:
    from strongroom.privacy import _masks_native, _scan_native
except ImportError as exc:  # pragma: no cover - reported, not hidden
    sys.exit(f"native module not built ({exc}); run `pip install -e .` first")

REPEATS = 7
CLEAN_40 = "GET /v1/records/list 200 in 3 ms (cache)"  # 40 bytes, no PII
MASK_VALUES = {
    "email": "john.doe@example.com",
    "card": "4242 4242 4242 4242",
    "ssn": "123-45-6789",
    "phone": "+1 (415) 555-0134",
    "iban": "DE89 3704 0044 0532 0130 00",
    "name": "John Ronald Tolkien",
    "text": "a generic text value",
}


def median_seconds(fn: Callable[[], object], loops: int) -> float:
    """Median over ``REPEATS`` runs of the time of one call."""
    samples = []
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(loops):
            fn()
        samples.append((time.process_time() - start) / loops)
    return statistics.median(samples)


def main() -> None:
    text = corpus.mixed_corpus(1 << 20)
    size = len(text.encode())
    assert len(CLEAN_40.encode()) == 40
    impls: list[tuple[str, Callable[[str], str], int]] = [
        ("native", _scan_native.redact_labels, 10),
        ("pure twin", _scan_py.redact_labels, 1),
        ("re baseline", re_baseline.redact, 1),
    ]
    rows = []
    for name, fn, loops in impls:
        throughput = size / median_seconds(lambda fn=fn: fn(text), loops) / 1e6
        per_call = median_seconds(lambda fn=fn: fn(CLEAN_40), 20000 if name == "native" else 2000)
        rows.append((name, throughput, per_call * 1e9))
    native_mbs = rows[0][1]
    print(f"mixed corpus: {size / 1e6:.2f} MB UTF-8, {text.count(chr(10)) + 1} lines")
    print(f"{'implementation':<14} {'MB/s':>9} {'x re':>8} {'ns/call (40 B, no PII)':>24}")
    for name, mbs, ns in rows:
        print(f"{name:<14} {mbs:>9.1f} {mbs / rows[2][1]:>8.1f} {ns:>24.0f}")
    print(f"\nnative vs re baseline: {native_mbs / rows[2][1]:.1f}x")
    print(f"\n{'mask (partial)':<14} {'native ns':>10} {'pure ns':>10}")
    for kind, value in MASK_VALUES.items():
        native_ns = median_seconds(lambda k=kind, v=value: _masks_native.mask(k, v), 20000) * 1e9
        pure_ns = median_seconds(lambda k=kind, v=value: _masks_py.mask(k, v), 5000) * 1e9
        print(f"{kind:<14} {native_ns:>10.0f} {pure_ns:>10.0f}")


if __name__ == "__main__":
    main()
