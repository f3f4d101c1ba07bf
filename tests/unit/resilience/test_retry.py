from __future__ import annotations

import pytest

from strongroom.resilience import Backoff, retry


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def flaky(failures: int, exc: type[Exception] = Transient):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    async def operation() -> int:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc
        return calls["n"]

    return operation, calls


def is_transient(exc: Exception) -> bool:
    return isinstance(exc, Transient)


async def test_succeeds_after_transient_failures() -> None:
    sleep = Recorder()
    operation, calls = flaky(2)
    result = await retry(
        operation,
        Backoff(attempts=3, base=0.1, cap=1.0),
        retryable=is_transient,
        sleep=sleep,
        uniform=lambda: 1.0,
    )
    assert result == 3
    assert calls["n"] == 3
    assert sleep.sleeps == [pytest.approx(0.1), pytest.approx(0.2)]


async def test_gives_up_after_the_attempts_with_the_last_error() -> None:
    sleep = Recorder()
    operation, calls = flaky(10)
    with pytest.raises(Transient):
        await retry(operation, Backoff(attempts=4), retryable=is_transient, sleep=sleep)
    assert calls["n"] == 4
    assert len(sleep.sleeps) == 3  # no wait after the last attempt


async def test_does_not_retry_what_is_not_retryable() -> None:
    sleep = Recorder()
    operation, calls = flaky(1, Permanent)
    with pytest.raises(Permanent):
        await retry(operation, Backoff(attempts=5), retryable=is_transient, sleep=sleep)
    assert calls["n"] == 1
    assert sleep.sleeps == []


async def test_a_single_attempt_never_sleeps() -> None:
    sleep = Recorder()
    operation, _ = flaky(1)
    with pytest.raises(Transient):
        await retry(operation, Backoff(attempts=1), retryable=is_transient, sleep=sleep)
    assert sleep.sleeps == []


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    backoff = Backoff(attempts=10, base=0.05, cap=0.4)
    assert [backoff.ceiling(n) for n in range(5)] == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert backoff.delay(3, lambda: 0.0) == 0.0
    assert backoff.delay(3, lambda: 0.5) == pytest.approx(0.2)
    for n in range(8):
        for _ in range(50):
            assert 0.0 <= backoff.delay(n) <= backoff.ceiling(n)


async def test_real_sleep_is_short() -> None:
    operation, _ = flaky(2)
    result = await retry(
        operation, Backoff(attempts=3, base=0.001, cap=0.002), retryable=is_transient
    )
    assert result == 3


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="attempts"):
        Backoff(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        Backoff(base=-1)
