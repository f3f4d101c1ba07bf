from __future__ import annotations

import pytest

from strongroom.crypto import DekCache, FieldCipher, field_aad


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Secret:
    def __repr__(self) -> str:
        return "SECRET-MATERIAL"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, max_entries: int = 3, ttl: float = 10.0) -> DekCache[str, object]:
    return DekCache(max_entries, ttl, clock=clock)


def test_get_returns_what_was_put(clock: FakeClock) -> None:
    cache = make(clock)
    value = object()
    cache.put("a", value)
    assert cache.get("a") is value
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 1)
    assert len(cache) == 1


def test_least_recently_used_is_evicted_first(clock: FakeClock) -> None:
    cache = make(clock, max_entries=3)
    for key in "abc":
        cache.put(key, key)
    assert cache.get("a") == "a"  # a becomes most recent: b is now the oldest
    cache.put("d", "d")
    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == ["a", "c", "d"]
    cache.put("e", "e")  # the reads above left a as the least recently used
    assert cache.get("a") is None
    assert cache.evictions == 2
    assert len(cache) == 3


def test_put_of_an_existing_key_refreshes_recency(clock: FakeClock) -> None:
    cache = make(clock, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)
    cache.put("c", 4)
    assert cache.get("b") is None
    assert cache.get("a") == 3
    assert len(cache) == 2


def test_entries_expire_after_the_ttl(clock: FakeClock) -> None:
    cache = make(clock, ttl=10.0)
    cache.put("a", 1)
    clock.now += 9.999
    assert cache.get("a") == 1
    clock.now += 0.001
    assert cache.get("a") is None
    assert cache.expirations == 1
    assert len(cache) == 0


def test_hits_do_not_extend_the_ttl(clock: FakeClock) -> None:
    cache = make(clock, ttl=10.0)
    cache.put("a", 1)
    for _ in range(9):
        clock.now += 1
        assert cache.get("a") == 1
    clock.now += 1
    assert cache.get("a") is None


def test_put_restarts_the_ttl(clock: FakeClock) -> None:
    cache = make(clock, ttl=10.0)
    cache.put("a", 1)
    clock.now += 8
    cache.put("a", 2)
    clock.now += 8
    assert cache.get("a") == 2


def test_purge_expired_drops_only_expired_entries(clock: FakeClock) -> None:
    cache = make(clock, ttl=10.0)
    cache.put("old", 1)
    clock.now += 5
    cache.put("new", 2)
    clock.now += 5
    assert cache.purge_expired() == 1
    assert len(cache) == 1
    assert cache.get("new") == 2
    assert cache.expirations == 1


def test_evict(clock: FakeClock) -> None:
    cache = make(clock)
    cache.put("a", 1)
    assert cache.evict("a") is True
    assert cache.evict("a") is False
    assert cache.get("a") is None
    assert len(cache) == 0


def grouped(clock: FakeClock, max_entries: int = 10) -> DekCache[tuple[str, bytes, int], int]:
    return DekCache(max_entries, 60.0, clock=clock, group=lambda key: key[:2])


def test_evict_group_drops_a_subjects_keys_and_nothing_else(clock: FakeClock) -> None:
    cache = grouped(clock)
    cache.put(("t1", b"s1", 1), 1)
    cache.put(("t1", b"s1", 2), 2)
    cache.put(("t1", b"s2", 1), 3)
    cache.put(("t2", b"s1", 1), 4)
    cache.put(("t1", b"s1", 2), 5)  # replaced, still one entry
    assert cache.evict_group(("t1", b"s1")) == 2
    assert len(cache) == 2
    assert cache.get(("t1", b"s1", 1)) is None
    assert cache.get(("t1", b"s1", 2)) is None
    assert cache.get(("t1", b"s2", 1)) == 3
    assert cache.get(("t2", b"s1", 1)) == 4
    assert cache.evict_group(("t1", b"s1")) == 0


def test_the_group_index_follows_every_way_out(clock: FakeClock) -> None:
    cache = grouped(clock, max_entries=3)
    cache.put(("t", b"a", 1), 1)
    cache.put(("t", b"b", 1), 2)
    cache.put(("t", b"c", 1), 3)
    cache.put(("t", b"d", 1), 4)  # full: ("t", b"a", 1) goes for capacity
    assert cache.evict_group(("t", b"a")) == 0
    assert cache.evict(("t", b"b", 1)) is True
    assert cache.evict_group(("t", b"b")) == 0
    clock.now += 61
    assert cache.get(("t", b"d", 1)) is None  # expired on touch
    assert cache.evict_group(("t", b"d")) == 0
    cache.put(("t", b"e", 1), 5)
    clock.now += 61
    assert cache.purge_expired() == 2  # ("t", b"c", 1) and ("t", b"e", 1)
    assert cache.evict_group(("t", b"c")) == 0
    assert cache.evict_group(("t", b"e")) == 0
    cache.put(("t", b"f", 1), 6)
    cache.clear()
    assert cache.evict_group(("t", b"f")) == 0
    cache.put(("t", b"f", 1), 7)  # the group starts again after every way out
    assert cache.evict_group(("t", b"f")) == 1
    assert len(cache) == 0


def test_evict_group_needs_a_group_function(clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="group"):
        make(clock).evict_group("a")


def test_clear_keeps_counters(clock: FakeClock) -> None:
    cache = make(clock)
    cache.put("a", 1)
    cache.get("a")
    cache.clear()
    assert len(cache) == 0
    assert cache.get("a") is None
    assert (cache.hits, cache.misses) == (1, 1)


@pytest.mark.parametrize(("max_entries", "ttl"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -5.0)])
def test_rejects_bad_limits(max_entries: int, ttl: float) -> None:
    with pytest.raises(ValueError, match=r"max_entries|ttl_seconds"):
        DekCache(max_entries, ttl)


def test_uses_a_monotonic_clock_by_default() -> None:
    cache: DekCache[str, int] = DekCache(1, 60.0)
    cache.put("a", 1)
    assert cache.get("a") == 1
    assert (cache.max_entries, cache.ttl_seconds) == (1, 60.0)


def test_repr_never_shows_values(clock: FakeClock) -> None:
    cache = make(clock)
    cache.put("a", Secret())
    text = repr(cache)
    assert "SECRET" not in text
    assert "entries=1" in text


def test_holds_field_ciphers(clock: FakeClock, dek: bytes) -> None:
    cache: DekCache[tuple[str, bytes, int], FieldCipher] = DekCache(8, 300.0, clock=clock)
    key = ("tenant-a", b"\x01" * 32, 1)
    cache.put(key, FieldCipher(dek, 1))
    cipher = cache.get(key)
    assert cipher is not None
    aad = field_aad("tenant-a", "customers", "r1", "email", 1)
    assert cipher.decrypt(cipher.encrypt(b"value", aad), aad) == b"value"
    assert dek.hex() not in repr(cache) + repr(cipher)
