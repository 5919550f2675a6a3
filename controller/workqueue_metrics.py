"""Work-queue instrumentation: a port of client-go ``util/workqueue/metrics.go``.

The queue calls :class:`QueueMetrics` hooks under its own lock; the hooks turn those calls
into observations on metric objects obtained from a :class:`MetricsProvider`, so the queue
does not depend on Prometheus (``controller.metrics`` provides the Prometheus provider with
controller-runtime's names, labels and buckets).

Semantics, as upstream:

* ``depth`` counts dirty items, including keys re-added while a worker holds them;
* ``adds`` counts adds that were not collapsed into an already-dirty item;
* ``queue_duration`` is the time from the *first* add of an item to the ``get`` that hands it
  out; ``work_duration`` is the time from that ``get`` to ``done``;
* ``retries`` counts every ``add_after`` call, including delays <= 0 and requeues after a
  successful reconcile (client-go's behaviour; the controller-runtime priority queue only
  counts delays > 0);
* ``unfinished_work_seconds`` sums the ages of all items being processed and
  ``longest_running_processor_seconds`` is the oldest of them. client-go refreshes these two
  from a 500 ms ticker goroutine per queue; here :meth:`QueueMetrics.update_unfinished_work`
  is called by the provider whenever metrics are collected, which yields the same values,
  always current, without a thread per queue.

A queue without a name emits no metrics (:data:`NOOP_PROVIDER`), as upstream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Protocol

from controller.clock import Clock


class GaugeMetric(Protocol):
    def inc(self) -> None: ...
    def dec(self) -> None: ...


class SettableGaugeMetric(Protocol):
    def set(self, value: float) -> None: ...


class CounterMetric(Protocol):
    def inc(self) -> None: ...


class HistogramMetric(Protocol):
    def observe(self, value: float) -> None: ...


class MetricsProvider(Protocol):
    """client-go ``MetricsProvider``: one metric object per queue name and series.

    ``track_unfinished_work`` is the one addition: the provider calls ``update`` before it
    reports the unfinished-work gauges (see the module docstring).
    """

    def new_depth_metric(self, name: str) -> GaugeMetric: ...
    def new_adds_metric(self, name: str) -> CounterMetric: ...
    def new_latency_metric(self, name: str) -> HistogramMetric: ...
    def new_work_duration_metric(self, name: str) -> HistogramMetric: ...
    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric: ...
    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric: ...
    def new_retries_metric(self, name: str) -> CounterMetric: ...
    def track_unfinished_work(self, name: str, update: Callable[[], None]) -> None: ...


class _Noop:
    def inc(self) -> None:
        pass

    def dec(self) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


class NoopMetricsProvider:
    """Discards everything; used for queues without a name."""

    def new_depth_metric(self, name: str) -> GaugeMetric:
        return _Noop()

    def new_adds_metric(self, name: str) -> CounterMetric:
        return _Noop()

    def new_latency_metric(self, name: str) -> HistogramMetric:
        return _Noop()

    def new_work_duration_metric(self, name: str) -> HistogramMetric:
        return _Noop()

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return _Noop()

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return _Noop()

    def new_retries_metric(self, name: str) -> CounterMetric:
        return _Noop()

    def track_unfinished_work(self, name: str, update: Callable[[], None]) -> None:
        pass


NOOP_PROVIDER = NoopMetricsProvider()


class QueueMetrics:
    """The bookkeeping behind the queue's metrics (client-go ``defaultQueueMetrics``).

    ``add``/``get``/``done`` are called by the queue while it holds its lock; this object has
    its own lock as well because ``update_unfinished_work`` is called from the collector's
    thread.
    """

    def __init__(self, name: str, provider: MetricsProvider, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._depth = provider.new_depth_metric(name)
        self._adds = provider.new_adds_metric(name)
        self._latency = provider.new_latency_metric(name)
        self._work_duration = provider.new_work_duration_metric(name)
        self._unfinished = provider.new_unfinished_work_seconds_metric(name)
        self._longest = provider.new_longest_running_processor_seconds_metric(name)
        self._retries = provider.new_retries_metric(name)
        self._add_times: dict[Hashable, float] = {}
        self._processing_start_times: dict[Hashable, float] = {}
        provider.track_unfinished_work(name, self.update_unfinished_work)

    def add(self, item: Hashable) -> None:
        with self._lock:
            self._adds.inc()
            self._depth.inc()
            self._add_times.setdefault(item, self._clock.monotonic())

    def get(self, item: Hashable) -> None:
        with self._lock:
            now = self._clock.monotonic()
            self._depth.dec()
            self._processing_start_times[item] = now
            added = self._add_times.pop(item, None)
            if added is not None:
                self._latency.observe(now - added)

    def done(self, item: Hashable) -> None:
        with self._lock:
            started = self._processing_start_times.pop(item, None)
            if started is not None:
                self._work_duration.observe(self._clock.monotonic() - started)

    def retry(self) -> None:
        self._retries.inc()

    def update_unfinished_work(self) -> None:
        with self._lock:
            now = self._clock.monotonic()
            ages = [now - started for started in self._processing_start_times.values()]
        self._unfinished.set(sum(ages))
        self._longest.set(max(ages, default=0.0))
