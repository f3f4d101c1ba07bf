"""A bounded, expiring in-process cache of unwrapped data keys.

Unwrapping costs a master key operation (a Vault round trip with Transit), so hot subjects keep
their ready `FieldCipher` here. Keys never leave the process: not to Redis, logs or traces.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["DekCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class DekCache(Generic[K, V]):
    """LRU cache with a time-to-live, holding unwrapped key objects.

    The intended entries map ``(tenant_id, subject_ref, dek_version)`` to a `FieldCipher`, which
    holds the key inside its AES object and never shows it in `repr`; storing the cipher rather
    than raw bytes also saves rebuilding it on every hit. The cache is generic so the same class
    can hold tenants' `BlindIndex` objects.

    The TTL counts from `put` and is not extended by hits: it bounds how long a key stays in
    memory, and how long a key destroyed by an erasure on another process can still be used here.
    `get`, `put` and `evict` are O(1); expired entries are dropped when touched or by
    `purge_expired`. Not thread-safe: use it from one event loop.

    With a ``group`` function (a subject's keys: ``key[:2]``, its tenant and pseudonym), the
    cache also indexes its keys by group, and `evict_group` drops a whole group in time
    proportional to its size, not to the cache's: an erasure must not scan every cached key.

    `hits`, `misses`, `evictions` (dropped for capacity) and `expirations` are public counters.
    """

    __slots__ = (
        "_clock",
        "_entries",
        "_group",
        "_groups",
        "_max_entries",
        "_ttl",
        "evictions",
        "expirations",
        "hits",
        "misses",
    )

    def __init__(
        self,
        max_entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        group: Callable[[K], Hashable] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        self._max_entries = max_entries
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._group = group
        self._groups: dict[Hashable, set[K]] = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    @property
    def max_entries(self) -> int:
        """The capacity."""
        return self._max_entries

    @property
    def ttl_seconds(self) -> float:
        """How long an entry lives after `put`."""
        return self._ttl

    def get(self, key: K) -> V | None:
        """The live value for `key`, marked most recently used, or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            self._drop(key)
            self.expirations += 1
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value` with a fresh TTL, dropping the least recently used entry when full."""
        entries = self._entries
        if self._group is not None and key not in entries:
            self._groups.setdefault(self._group(key), set()).add(key)
        entries[key] = (self._clock() + self._ttl, value)
        entries.move_to_end(key)
        while len(entries) > self._max_entries:
            self._drop(next(iter(entries)))
            self.evictions += 1

    def evict(self, key: K) -> bool:
        """Drop `key`; return whether it was present."""
        if key not in self._entries:
            return False
        self._drop(key)
        return True

    def evict_group(self, group: Hashable) -> int:
        """Drop every entry of `group` (O(size of the group)); return how many."""
        if self._group is None:
            raise TypeError("this cache was made without a group function")
        members = self._groups.pop(group, ())
        for key in members:
            del self._entries[key]
        return len(members)

    def purge_expired(self) -> int:
        """Drop every expired entry (O(n)); return how many."""
        now = self._clock()
        doomed = [key for key, (expires_at, _) in self._entries.items() if now >= expires_at]
        for key in doomed:
            self._drop(key)
        self.expirations += len(doomed)
        return len(doomed)

    def clear(self) -> None:
        """Drop every entry; the counters are kept."""
        self._entries.clear()
        self._groups.clear()

    def _drop(self, key: K) -> None:
        del self._entries[key]
        if self._group is not None:
            group = self._group(key)
            members = self._groups[group]
            members.discard(key)
            if not members:
                del self._groups[group]

    def __len__(self) -> int:
        """Entries held, including expired ones not yet dropped."""
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"DekCache(entries={len(self._entries)}, max_entries={self._max_entries}, "
            f"ttl_seconds={self._ttl}, hits={self.hits}, misses={self.misses})"
        )
