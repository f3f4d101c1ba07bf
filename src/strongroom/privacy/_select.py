"""Pick the compiled scanner and masks, or their pure-Python twins.

The environment is read here, once, at import time, because the choice has to be made before any
settings object exists (the log pipeline redacts from the first record on):

- ``STRONGROOM_NO_NATIVE=1`` forces the pure-Python twin (a kill switch for production);
- ``STRONGROOM_REQUIRE_NATIVE=1`` turns a missing compiled module into an ``ImportError`` (CI and
  the container build must never ship the slow path silently).
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["IMPLEMENTATION", "mask", "redact_labels", "scan"]

_TRUE = frozenset({"1", "true", "yes", "on"})


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


Span = tuple[str, int, int]

scan: Callable[[str], list[Span]]
redact_labels: Callable[[str], str]
mask: Callable[[str, str, str], str]

_require = _flag("STRONGROOM_REQUIRE_NATIVE")
if _require and _flag("STRONGROOM_NO_NATIVE"):
    raise ImportError("STRONGROOM_REQUIRE_NATIVE and STRONGROOM_NO_NATIVE are both set")

IMPLEMENTATION: str
if _flag("STRONGROOM_NO_NATIVE"):
    from ._masks_py import mask
    from ._scan_py import redact_labels, scan

    IMPLEMENTATION = "python"
else:
    try:
        from ._masks_native import mask
        from ._scan_native import redact_labels, scan

        IMPLEMENTATION = "native"
    except ImportError:
        if _require:
            raise

        IMPLEMENTATION = "python"
