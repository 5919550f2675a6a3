"""A port of client-go ``util/workqueue``: the queue, the delaying queue, the rate-limiting queue.

Three layers, each wrapping the one below, with client-go's method names in snake_case so the
code can be read side by side with ``queue.go``, ``delaying_queue.go`` and
``rate_limiting_queue.go``:

* :class:`Queue` (``add``, ``get``, ``done``, ``len``, ``shut_down``, ``shut_down_with_drain``):
  a FIFO with a ``dirty`` set ("needs processing") and a ``processing`` set ("a worker holds
  it") under one condition variable. The guarantees the controllers rely on:

  - an item is never held by two workers at once;
  - adding an item that is already dirty is a no-op (duplicates collapse);
  - adding an item while a worker holds it is not lost: it becomes dirty, and ``done`` puts it
    back on the queue.

* :class:`DelayingQueue` adds ``add_after``. Waiting items live in a min-heap keyed on the time
  they become ready, with at most one entry per item: a second ``add_after`` for the same item
  only ever moves it *earlier*. A loop thread moves ready items onto the queue; the same step
  is available as :meth:`DelayingQueue.pump`, so tests drive a :class:`~controller.clock.FakeClock`
  without threads (``start_thread=False``).

* :class:`RateLimitingQueue` adds ``add_rate_limited`` (``add_after(item, limiter.when(item))``),
  ``forget`` and ``num_requeues``.

Why a port rather than a library: Python's ``queue.Queue`` has neither the dirty/processing
bookkeeping (one worker per key, no lost re-adds) nor delayed, deduplicated adds, and no
maintained package reproduces client-go's contract, which the reconcilers' correctness and the
standard dashboards depend on.

Deviations: ``shut_down_with_drain`` takes an optional timeout so shutdown is bounded, and the
delaying queue hands items to the queue directly under a lock instead of through a buffered
channel (there is no goroutine to unblock, so the channel buys nothing).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from controller.clock import Clock, RealClock
from controller.ratelimit import RateLimiter, default_controller_rate_limiter
from controller.workqueue_metrics import NOOP_PROVIDER, MetricsProvider, QueueMetrics

T = TypeVar("T", bound=Hashable)

# delaying_queue.go maxWait: the loop re-checks at least this often even without news.
MAX_WAIT = 10.0


class Queue(Generic[T]):
    """client-go ``Typed[T]``: a work queue that hands each item to one worker at a time.

    Items must be hashable; controllers use :class:`~controller.keys.ObjectKey`.
    A named queue reports metrics through ``metrics_provider``; an unnamed one reports none.
    """

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or RealClock()
        provider = metrics_provider if (name and metrics_provider is not None) else NOOP_PROVIDER
        self._metrics = QueueMetrics(name, provider, self._clock)
        self._cond = threading.Condition()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._drain = False

    def add(self, item: T) -> None:
        """Marks ``item`` as needing processing.

        Ignored after shutdown. A no-op if the item is already dirty. If a worker holds the
        item, it is only marked dirty; ``done`` re-queues it.
        """
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            self._metrics.add(item)
            self._dirty.add(item)
            if item in self._processing:
                return
            self._queue.append(item)
            self._cond.notify()

    def len(self) -> int:
        """Returns the number of items waiting to be handed out (not those being processed)."""
        with self._cond:
            return len(self._queue)

    def __len__(self) -> int:
        return self.len()

    def get(self) -> tuple[T | None, bool]:
        """Blocks until an item is available and returns ``(item, False)``.

        The caller must call :meth:`done` with the item when it has finished with it. Returns
        ``(None, True)`` once the queue is shut down and empty: the worker should exit. Items
        still queued at shutdown are handed out first, as upstream.
        """
        with self._cond:
            while not self._queue and not self._shutting_down:
                self._cond.wait()
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item: T) -> None:
        """Marks ``item`` as finished; re-queues it if it was added while being processed."""
        with self._cond:
            self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            elif not self._processing and self._drain:
                # Wakes shut_down_with_drain, which waits for processing to empty. Only then:
                # waking every idle worker whenever the queue empties costs each of them a
                # thread switch for nothing.
                self._cond.notify_all()

    def shut_down(self) -> None:
        """Stops accepting items; workers get ``shutdown=True`` once the queue is empty.

        Also releases a pending :meth:`shut_down_with_drain` without waiting for workers.
        """
        with self._cond:
            self._drain = False
            self._shutting_down = True
            self._cond.notify_all()

    def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        """Stops accepting items and waits until no item is being processed.

        Returns ``True`` once every handed-out item has been ``done``, ``False`` if ``timeout``
        (seconds, real time) passed first or :meth:`shut_down` was called meanwhile. Workers
        must call ``done`` for every item they got, or this waits for the whole timeout.
        """
        with self._cond:
            self._drain = True
            self._shutting_down = True
            self._cond.notify_all()
            drained = self._cond.wait_for(lambda: not self._processing or not self._drain, timeout)
            return bool(drained) and not self._processing

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def update_unfinished_work(self) -> None:
        """Refreshes the unfinished-work gauges (normally done when metrics are collected)."""
        self._metrics.update_unfinished_work()


class _Waiting(Generic[T]):
    """The delaying queue's heap: at most one live entry per item, earliest ready time wins.

    ``heapq`` has no decrease-key, so moving an entry earlier pushes a new entry and marks the
    old one dead; dead entries are skipped when they reach the top.
    """

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        self._entries: dict[T, list[Any]] = {}
        self._seq = itertools.count()

    def insert(self, item: T, ready_at: float) -> bool:
        """Schedules ``item``; returns whether the earliest ready time changed."""
        entry = self._entries.get(item)
        if entry is not None:
            if entry[0] <= ready_at:
                return False
            entry[3] = False
        new = [ready_at, next(self._seq), item, True]
        self._entries[item] = new
        heapq.heappush(self._heap, new)
        return self._heap[0] is new

    def pop_ready(self, now: float) -> list[T]:
        ready: list[T] = []
        while self._heap and (not self._heap[0][3] or self._heap[0][0] <= now):
            _, _, item, live = heapq.heappop(self._heap)
            if live:
                del self._entries[item]
                ready.append(item)
        return ready

    def next_ready_at(self) -> float | None:
        while self._heap and not self._heap[0][3]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def ready_at(self, item: T) -> float | None:
        entry = self._entries.get(item)
        return entry[0] if entry is not None else None

    def clear(self) -> None:
        self._heap.clear()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class DelayingQueue(Queue[T]):
    """client-go ``DelayingInterface``: a queue with ``add_after``.

    With ``start_thread=True`` (the default) a daemon thread moves items onto the queue when
    they become ready, waking when the earliest entry changes, at the earliest ready time, and
    at least every :data:`MAX_WAIT` seconds. With ``start_thread=False`` nothing moves until
    :meth:`pump` is called, which is how tests use a fake clock.
    """

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
        start_thread: bool = True,
    ) -> None:
        super().__init__(name, clock=clock, metrics_provider=metrics_provider)
        self._waiting: _Waiting[T] = _Waiting()
        self._waiting_cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        if start_thread:
            self._thread = threading.Thread(
                target=self._waiting_loop, name=f"workqueue-delay-{name or 'unnamed'}", daemon=True
            )
            self._thread.start()

    def add_after(self, item: T, delay: float) -> None:
        """Adds ``item`` once ``delay`` seconds have passed; ``delay <= 0`` adds it now.

        If the item is already waiting, it keeps the earlier of the two ready times. Ignored
        after shutdown. Every call counts as a retry in the queue's metrics.
        """
        if self.shutting_down():
            return
        self._metrics.retry()
        if delay <= 0:
            self.add(item)
            return
        with self._waiting_cond:
            if self._waiting.insert(item, self._clock.monotonic() + delay):
                self._waiting_cond.notify()

    def pump(self) -> float | None:
        """Moves every item whose time has come onto the queue.

        Returns the seconds until the next waiting item is ready, or ``None`` if nothing is
        waiting. The loop thread calls this; tests call it after stepping a fake clock.
        """
        with self._waiting_cond:
            return self._pump_locked()

    def _pump_locked(self) -> float | None:
        # Lock order is always waiting -> queue: add() takes the queue's lock, and nothing
        # takes the waiting lock while holding the queue's.
        now = self._clock.monotonic()
        for item in self._waiting.pop_ready(now):
            self.add(item)
        next_at = self._waiting.next_ready_at()
        return None if next_at is None else max(0.0, next_at - now)

    def waiting_for(self, item: T) -> float | None:
        """Returns the seconds until ``item`` becomes ready, or ``None`` if it is not waiting."""
        with self._waiting_cond:
            ready_at = self._waiting.ready_at(item)
            if ready_at is None:
                return None
            return ready_at - self._clock.monotonic()

    def num_waiting(self) -> int:
        with self._waiting_cond:
            return len(self._waiting)

    def shut_down(self) -> None:
        self._stop_waiting()
        super().shut_down()

    def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        self._stop_waiting()
        return super().shut_down_with_drain(timeout)

    def _stop_waiting(self) -> None:
        with self._waiting_cond:
            self._stopped = True
            self._waiting.clear()
            self._waiting_cond.notify_all()

    def _waiting_loop(self) -> None:
        # The lock is held except inside wait(), so an insert that moves the head earlier
        # either happens before the next timeout is computed or wakes the wait: never lost.
        with self._waiting_cond:
            while not self._stopped:
                next_in = self._pump_locked()
                self._waiting_cond.wait(MAX_WAIT if next_in is None else min(next_in, MAX_WAIT))


class RateLimitingQueue(DelayingQueue[T]):
    """client-go ``RateLimitingInterface``: a delaying queue whose retries are rate limited.

    The limiter defaults to :func:`~controller.ratelimit.default_controller_rate_limiter`
    (per-item 5 ms..1000 s, overall 10/s with a burst of 100), sharing the queue's clock.
    """

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
        start_thread: bool = True,
    ) -> None:
        clock = clock or RealClock()
        super().__init__(name, clock=clock, metrics_provider=metrics_provider, start_thread=start_thread)
        self.rate_limiter = rate_limiter or default_controller_rate_limiter(clock)

    def add_rate_limited(self, item: T) -> None:
        """Adds ``item`` after the delay its rate limiter says it must wait."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clears ``item``'s failure history. The item must still be ``done``."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Returns how many rate-limited re-adds ``item`` has had since it was last forgotten."""
        return self.rate_limiter.num_requeues(item)
