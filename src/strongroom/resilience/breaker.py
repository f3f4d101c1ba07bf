"""A circuit breaker: stop calling a dependency that keeps failing, probe it again later.

Closed: calls go through; `failure_threshold` consecutive failures open the circuit. Open: calls
fail fast with :class:`CircuitOpen` for `reset_timeout` seconds. Half-open: one trial call goes
through (the others still fail fast); its success closes the circuit, its failure opens it again
for another `reset_timeout`.

Only the failures that say the dependency is unwell count (the caller's `counts` decides); an
answer such as "not found" or "permission denied" is the dependency working.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen"]

T = TypeVar("T")


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The circuit is open: the call was not attempted."""

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"{name} circuit is open; next attempt in {max(retry_in, 0.0):.1f}s")
        self.name = name
        self.retry_in = retry_in


def _always(exc: BaseException) -> bool:
    return True


class CircuitBreaker:
    """Counts consecutive failures of one dependency and fails fast while it is down.

    Not thread-safe: use it from one event loop.
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_trial_running",
        "failure_threshold",
        "name",
        "reset_timeout",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout < 0:
            raise ValueError("reset_timeout must not be negative")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _enter(self) -> bool:
        """Admit a call or raise `CircuitOpen`; true when the call is the half-open trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        assert self._opened_at is not None
        raise CircuitOpen(self.name, self._opened_at + self.reset_timeout - self._clock())

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()  # (re)open: a failed trial restarts the cool-down

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        counts: Callable[[BaseException], bool] = _always,
    ) -> T:
        """Run `operation` through the breaker; `counts(exc)` says whether a failure counts."""
        trial = self._enter()
        try:
            result = await operation()
        except BaseException as exc:
            if isinstance(exc, Exception) and counts(exc):
                self.record_failure()
            elif trial and self._opened_at is not None:
                # The trial ended without a verdict (cancelled, or an answer that does not
                # count): the next caller may try again at once.
                self._opened_at = self._clock() - self.reset_timeout
            raise
        finally:
            if trial:
                self._trial_running = False
        self.record_success()
        return result

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self.name!r}, state={self.state.value}, "
            f"failures={self._failures})"
        )
