"""A bounded least-recently-used map that threads can share (cachetools' LRUCache under a lock)."""
from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class _EvictingLRU(LRUCache):
    """cachetools' LRUCache that tells ``on_evict`` which value it dropped to make room."""

    def __init__(self, maxsize: int, on_evict: Callable[[object], None] | None) -> None:
        super().__init__(maxsize=maxsize)
        self.on_evict = on_evict

    def popitem(self):
        key, value = super().popitem()
        if self.on_evict:
            self.on_evict(value)
        return key, value


class SharedLRU(Generic[V]):
    """At most ``max_entries`` values; the least recently used one goes first (``on_evict`` hears of it).

    ``max_entries=0`` keeps nothing.
    """

    def __init__(self, max_entries: int, on_evict: Callable[[V], None] | None = None) -> None:
        self.max_entries = max(0, max_entries)
        self._entries = _EvictingLRU(max(1, self.max_entries), on_evict)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Hashable, value: V) -> None:
        if self.max_entries:
            with self._lock:
                self._entries[key] = value

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
