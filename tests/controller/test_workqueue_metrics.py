"""Work-queue metrics hooks, ported from client-go's metrics_test.go (fake clock, fake provider)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controller.clock import FakeClock
from controller.workqueue import DelayingQueue, Queue

US = 1e-6


class Value:
    def __init__(self) -> None:
        self.value = 0.0
        self.observations: list[float] = []

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def set(self, value: float) -> None:
        self.value = value

    def observe(self, value: float) -> None:
        self.observations.append(value)


class FakeProvider:
    def __init__(self) -> None:
        self.depth = Value()
        self.adds = Value()
        self.latency = Value()
        self.duration = Value()
        self.unfinished = Value()
        self.longest = Value()
        self.retries = Value()
        self.updaters: list[Callable[[], None]] = []
        self.names: set[str] = set()

    def new_depth_metric(self, name: str) -> Value:
        self.names.add(name)
        return self.depth

    def new_adds_metric(self, name: str) -> Value:
        return self.adds

    def new_latency_metric(self, name: str) -> Value:
        return self.latency

    def new_work_duration_metric(self, name: str) -> Value:
        return self.duration

    def new_unfinished_work_seconds_metric(self, name: str) -> Value:
        return self.unfinished

    def new_longest_running_processor_seconds_metric(self, name: str) -> Value:
        return self.longest

    def new_retries_metric(self, name: str) -> Value:
        return self.retries

    def track_unfinished_work(self, name: str, update: Callable[[], None]) -> None:
        self.updaters.append(update)


def test_queue_metrics_follow_add_get_done() -> None:
    mp = FakeProvider()
    clock = FakeClock(start=0.0)
    q: Queue[str] = Queue("test", clock=clock, metrics_provider=mp)

    q.add("foo")
    assert mp.adds.value == 1
    assert mp.depth.value == 1

    clock.step(50 * US)
    item, _ = q.get()
    assert mp.latency.observations == pytest.approx([50 * US])
    assert mp.depth.value == 0

    for _ in range(5):  # re-adds while processing collapse into one
        q.add(item)
    assert mp.adds.value == 2
    assert mp.depth.value == 1, "a key re-added while it is processed counts in the depth"

    clock.step(25 * US)
    q.done(item)
    assert mp.duration.observations == pytest.approx([25 * US])
    assert mp.depth.value == 1

    item, _ = q.get()
    assert mp.latency.observations[-1] == pytest.approx(25 * US), "queue time counts from the re-add"
    assert len(mp.latency.observations) == 2

    clock.step(1e-3)
    for update in mp.updaters:
        update()
    assert mp.unfinished.value == pytest.approx(1e-3)
    assert mp.longest.value == pytest.approx(1e-3)

    q.done(item)
    assert mp.duration.observations[-1] == pytest.approx(1e-3)
    assert len(mp.duration.observations) == 2


def test_unfinished_work_sums_all_in_flight_items_and_longest_is_the_oldest() -> None:
    mp = FakeProvider()
    clock = FakeClock(start=0.0)
    q: Queue[str] = Queue("test", clock=clock, metrics_provider=mp)
    q.add("a")
    q.get()
    clock.step(2.0)
    q.add("b")
    q.get()
    clock.step(1.0)
    q.update_unfinished_work()
    assert mp.unfinished.value == pytest.approx(3.0 + 1.0)
    assert mp.longest.value == pytest.approx(3.0)
    q.done("a")
    q.done("b")
    q.update_unfinished_work()
    assert mp.unfinished.value == 0
    assert mp.longest.value == 0


def test_every_add_after_counts_as_a_retry() -> None:
    mp = FakeProvider()
    q: DelayingQueue[str] = DelayingQueue("test", clock=FakeClock(), metrics_provider=mp, start_thread=False)
    q.add_after("a", 0)
    q.add_after("a", 1)
    q.add_after("b", -1)
    assert mp.retries.value == 3
    assert mp.adds.value == 2, "only the immediate adds reached the queue"


def test_an_unnamed_queue_reports_nothing() -> None:
    mp = FakeProvider()
    q: Queue[str] = Queue(clock=FakeClock(), metrics_provider=mp)
    q.add("a")
    assert mp.adds.value == 0
    assert not mp.names
