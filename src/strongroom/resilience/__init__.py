"""Failing well: a circuit breaker and retries with exponential backoff and full jitter."""

from strongroom.resilience.breaker import BreakerState, CircuitBreaker, CircuitOpen
from strongroom.resilience.retry import Backoff, retry

__all__ = ["Backoff", "BreakerState", "CircuitBreaker", "CircuitOpen", "retry"]
