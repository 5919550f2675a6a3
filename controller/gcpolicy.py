"""The cyclic garbage collector's settings for a process whose heap is mostly informer caches.

A cache is a large set of plain dicts and lists (decoded JSON: trees, no cycles) that lives as
long as the process. Reference counting frees each object when the cache drops it; the cyclic
collector can never free any of it, yet every full collection walks all of it, holding the GIL,
so every other thread waits. CPython's default thresholds (a young collection every 700 net
allocations, a full one every 100 young ones, and then only once the objects that survived
since the last full one are a quarter of all long-lived objects) suit small heaps. While a
restart lists 50,000 completed Runs, full collections walk the growing cache again and again:
decoding and storing the list's 100 pages took 2.28 CPU-seconds with the default thresholds
and 1.61 s with the one below, measured alone in one process.

So the operator's entry point takes the two measures large Python services take:

* :func:`raise_thresholds`: a young collection every 10,000 net allocations. Full collections
  come fourteen times less often; a young one walks at most 10,000 objects (well under a
  millisecond). Garbage in cycles waits a little longer to be freed: at most those 10,000
  objects.
* :class:`FreezeAfterSync`: once every informer has listed its objects for the first time, the
  young generations are collected and the heap is frozen (:func:`gc.freeze`). What is alive
  then (modules, clients, the caches as listed) moves to a permanent generation that later
  collections skip: with 50,000 Runs cached (about 640,000 tracked objects) a full collection
  held the GIL for 0.37 s, and after the freeze for under a millisecond. Frozen objects are still
  freed by reference counting when they are dropped. Garbage in cycles that is frozen stays
  until the process exits: the young collection just before frees what is recent, and what is
  left is what a full collection would have freed, 14 objects in the operator at start. A full
  collection instead would hold the GIL for those 0.37 s just when the operator turns ready.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

log = structlog.get_logger("controller.gcpolicy")

YOUNG_THRESHOLD = 10_000
"""Net allocations of container objects between two young collections (CPython's default: 700)."""

SYNC_POLL_SECONDS = 1.0
"""How long one wait for an informer's sync lasts before the freezer checks whether to stop."""


class Syncable(Protocol):
    def wait_for_sync(self, timeout: float | None = None) -> bool: ...


def raise_thresholds(young: int = YOUNG_THRESHOLD) -> None:
    """Collects the young generation every ``young`` net allocations; the older generations'
    thresholds (counted in collections of the generation below) stay as they are."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def freeze_heap() -> int:
    """Collects the young generations, then moves every tracked object to the permanent
    generation; returns the number of objects frozen."""
    gc.collect(1)
    gc.freeze()
    return gc.get_freeze_count()


class FreezeAfterSync:
    """A manager runnable (not needing the lease): freezes the heap once, after every informer
    has synced for the first time. A standby instance freezes its caches too: they are as large
    as the leader's."""

    def __init__(self, informers: Sequence[Syncable], *, freeze: Callable[[], int] = freeze_heap) -> None:
        self._informers = tuple(informers)
        self._freeze = freeze
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frozen = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gc-freeze", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(SYNC_POLL_SECONDS * 2)

    def _run(self) -> None:
        for informer in self._informers:
            while not informer.wait_for_sync(SYNC_POLL_SECONDS):
                if self._stop.is_set():
                    return
        if self._stop.is_set():
            return
        frozen = self._freeze()
        log.info("informers synced: heap frozen for the garbage collector", objects=frozen)
        self.frozen.set()
