from __future__ import annotations

import asyncio

import pytest

from strongroom.resilience import BreakerState, CircuitBreaker, CircuitOpen


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    pass


class NotCounted(Exception):
    pass


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise Boom


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("dep", failure_threshold=3, reset_timeout=10.0, clock=clock)


async def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            await breaker.call(boom)


async def test_closed_until_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    await fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert await breaker.call(ok) == "ok"  # a success resets the count
    await fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    await fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


async def test_open_fails_fast_without_calling(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await fail(breaker, 3)
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    clock.now += 4
    with pytest.raises(CircuitOpen) as raised:
        await breaker.call(counted)
    assert calls == 0
    assert raised.value.retry_in == pytest.approx(6.0)
    assert "dep circuit is open" in str(raised.value)


async def test_half_open_trial_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await fail(breaker, 3)
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert await breaker.call(ok) == "ok"
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


async def test_half_open_trial_failure_reopens(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await fail(breaker, 3)
    clock.now += 10
    await fail(breaker, 1)  # one failed trial is enough
    assert breaker.state is BreakerState.OPEN
    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    clock.now += 0.1
    assert await breaker.call(ok) == "ok"


async def test_half_open_admits_one_trial_at_a_time(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await fail(breaker, 3)
    clock.now += 10
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "trial"

    trial = asyncio.ensure_future(breaker.call(slow))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    release.set()
    assert await trial == "trial"
    assert breaker.state is BreakerState.CLOSED


async def test_failures_that_do_not_count(breaker: CircuitBreaker) -> None:
    async def refused() -> str:
        raise NotCounted

    for _ in range(5):
        with pytest.raises(NotCounted):
            await breaker.call(refused, counts=lambda exc: not isinstance(exc, NotCounted))
    assert breaker.state is BreakerState.CLOSED


async def test_cancelled_trial_lets_the_next_caller_try(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await fail(breaker, 3)
    clock.now += 10

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    trial = asyncio.ensure_future(breaker.call(hang))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state is BreakerState.HALF_OPEN
    assert await breaker.call(ok) == "ok"


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker("x", reset_timeout=-1)


def test_repr(breaker: CircuitBreaker) -> None:
    assert repr(breaker) == "CircuitBreaker(name='dep', state=closed, failures=0)"
