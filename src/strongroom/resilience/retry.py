"""Retries with exponential backoff and full jitter, for idempotent operations only.

The delay before retry ``n`` (from 0) is uniform in ``[0, min(cap, base * 2**n)]`` ("full
jitter"): clients that failed together do not come back together.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Backoff", "retry"]

T = TypeVar("T")

_system_random = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often to try (`attempts`, the first one included) and how long to wait between."""

    attempts: int = 3
    base: float = 0.05
    cap: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff delays must not be negative")

    def ceiling(self, retry_number: int) -> float:
        """The longest wait before retry `retry_number` (0 for the first retry)."""
        return min(self.cap, self.base * 2.0**retry_number)

    def delay(
        self, retry_number: int, uniform: Callable[[], float] = _system_random.random
    ) -> float:
        """A full-jitter wait before retry `retry_number`."""
        return uniform() * self.ceiling(retry_number)


async def retry(
    operation: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retryable: Callable[[Exception], bool],
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    uniform: Callable[[], float] = _system_random.random,
) -> T:
    """Await `operation()` until it succeeds, raises what `retryable` refuses, or the attempts
    run out (then the last exception propagates)."""
    for retry_number in range(backoff.attempts):
        try:
            return await operation()
        except Exception as exc:
            if retry_number + 1 >= backoff.attempts or not retryable(exc):
                raise
        await sleep(backoff.delay(retry_number, uniform))
    raise AssertionError("unreachable")  # the loop returns or raises
