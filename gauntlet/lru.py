"""A bounded least-recently-used map that threads can share (cachetools' LRUCache under a lock)."""
from __future__ import annotations

import threading
from typing import Generic, Hashable, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class SharedLRU(Generic[V]):
    """At most ``max_entries`` values; the least recently used one goes first. ``max_entries=0`` keeps nothing."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max(0, max_entries)
        self._entries: LRUCache = LRUCache(maxsize=max(1, self.max_entries))
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
