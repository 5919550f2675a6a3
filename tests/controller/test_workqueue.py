"""The work queue, ported from client-go's util/workqueue tests.

Deterministic cases use a FakeClock and drive the delaying queue with ``pump()`` instead of a
loop thread; a few threaded cases check blocking ``get`` and shutdown with short real timeouts.
"""

from __future__ import annotations

import threading

import pytest

from controller.clock import FakeClock
from controller.ratelimit import ItemExponentialFailureRateLimiter
from controller.workqueue import DelayingQueue, Queue, RateLimitingQueue
from kfp_devstack.waiting import wait_until


def delaying(clock: FakeClock) -> DelayingQueue[str]:
    return DelayingQueue(clock=clock, start_thread=False)


def get_done(q: Queue[str]) -> str | None:
    item, shutdown = q.get()
    assert not shutdown
    q.done(item)
    return item


# ---- queue.go ---------------------------------------------------------------------------------


def test_add_while_processing_is_not_lost_and_not_handed_out_twice() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    item, _ = q.get()
    q.add("a")  # a change arrives while a worker holds the key
    assert len(q) == 0, "the key must not be handed to a second worker while the first holds it"
    q.done(item)
    assert len(q) == 1, "the re-add must not be lost"
    assert get_done(q) == "a"
    assert len(q) == 0


def test_len_counts_distinct_waiting_items() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2


def test_collapse() -> None:
    q: Queue[str] = Queue()
    q.add("bar")
    q.add("bar")
    assert get_done(q) == "bar"
    assert len(q) == 0


def test_collapse_while_processing() -> None:
    q: Queue[str] = Queue()
    q.add("foo")
    item, _ = q.get()
    q.add("foo")
    q.add("foo")
    assert len(q) == 0
    q.done(item)
    assert len(q) == 1, "two adds while processing collapse into one"
    assert get_done(q) == "foo"
    assert len(q) == 0


def test_fifo_order() -> None:
    q: Queue[str] = Queue()
    for item in ("c", "a", "b"):
        q.add(item)
    assert [get_done(q) for _ in range(3)] == ["c", "a", "b"]


def test_adds_after_shut_down_are_ignored_but_queued_items_are_handed_out() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.shut_down()
    q.add("b")
    assert q.get() == ("a", False)
    q.done("a")
    assert q.get() == (None, True)


def test_drain_waits_for_items_being_processed() -> None:
    q: Queue[str] = Queue()
    q.add("foo")
    q.add("bar")
    first, _ = q.get()
    second, _ = q.get()
    assert q.shut_down_with_drain(timeout=0) is False, "two items are still being processed"
    q.add("baz")
    assert len(q) == 0, "no new items after shutdown"
    q.done(first)
    assert q.shut_down_with_drain(timeout=0) is False
    q.done(second)
    assert q.shut_down_with_drain(timeout=0) is True


def test_drain_reprocesses_dirty_item() -> None:
    q: Queue[str] = Queue()
    q.add("foo")
    item, _ = q.get()
    q.add("foo")  # dirty while processing
    assert q.shut_down_with_drain(timeout=0) is False
    q.done(item)
    assert q.get() == ("foo", False), "the dirty item is handed out again during the drain"
    assert q.shut_down_with_drain(timeout=0) is False
    q.done("foo")
    assert q.shut_down_with_drain(timeout=0) is True
    assert q.get() == (None, True)


# ---- delaying_queue.go ----------------------------------------------------------------------------


def test_simple_delayed_add() -> None:
    clock = FakeClock()
    q = delaying(clock)
    q.add_after("foo", 0.05)
    assert q.pump() == pytest.approx(0.05)
    assert len(q) == 0
    clock.step(0.06)
    assert q.pump() is None
    assert get_done(q) == "foo"
    clock.step(10)  # past the next heartbeat: nothing is added again
    q.pump()
    assert len(q) == 0


def test_non_positive_delay_adds_at_once() -> None:
    q = delaying(FakeClock())
    q.add_after("now", 0)
    q.add_after("past", -1)
    assert len(q) == 2
    assert q.num_waiting() == 0


def test_delayed_adds_dedup_to_the_earliest_time() -> None:
    clock = FakeClock()
    q = delaying(clock)
    q.add_after("foo", 0.05)
    q.add_after("foo", 0.07)  # later: ignored
    assert q.num_waiting() == 1
    clock.step(0.06)
    q.pump()
    assert get_done(q) == "foo"
    clock.step(0.02)  # past the second add
    q.pump()
    assert len(q) == 0, "the later add was merged, not kept"

    q.add_after("foo", 0.05)
    q.add_after("foo", 0.03)  # earlier: wins
    assert q.waiting_for("foo") == pytest.approx(0.03)
    clock.step(0.04)
    q.pump()
    assert get_done(q) == "foo"
    clock.step(0.02)
    q.pump()
    assert len(q) == 0


def test_add_two_fire_early() -> None:
    clock = FakeClock()
    q = delaying(clock)
    q.add_after("foo", 1)
    q.add_after("bar", 0.05)
    assert len(q) == 0
    clock.step(0.06)
    q.pump()
    assert get_done(q) == "bar"
    q.add_after("baz", 2)
    clock.step(1)
    q.pump()
    assert len(q) == 1
    assert get_done(q) == "foo"
    clock.step(2)
    q.pump()
    assert get_done(q) == "baz"


def test_items_ready_together_come_out_in_ready_time_order() -> None:
    clock = FakeClock()
    q = delaying(clock)
    q.add_after("foo", 1)
    q.add_after("bar", 0.5)
    q.add_after("baz", 0.25)
    clock.step(2)
    q.pump()
    assert [get_done(q) for _ in range(3)] == ["baz", "bar", "foo"]


def test_delayed_item_collapses_with_an_item_already_queued() -> None:
    clock = FakeClock()
    q = delaying(clock)
    q.add("foo")
    q.add_after("foo", 1)
    clock.step(1)
    q.pump()
    assert len(q) == 1


def test_shut_down_drops_waiting_items() -> None:
    clock = FakeClock()
    q = delaying(clock)
    q.add_after("foo", 1)
    q.shut_down()
    clock.step(2)
    q.pump()
    assert q.get() == (None, True)


# ---- rate_limiting_queue.go -------------------------------------------------------------------------


def test_rate_limited_adds_wait_exactly_the_limiters_delay() -> None:
    clock = FakeClock(start=0.0)
    q: RateLimitingQueue[str] = RateLimitingQueue(
        rate_limiter=ItemExponentialFailureRateLimiter(0.001, 1), clock=clock, start_thread=False
    )
    q.add_rate_limited("one")
    assert q.waiting_for("one") == pytest.approx(0.001, abs=1e-12)
    clock.step(0.001)
    q.pump()
    item, _ = q.get()
    q.add_rate_limited("one")
    assert q.waiting_for("one") == pytest.approx(0.002, abs=1e-12)
    assert q.num_requeues("one") == 2

    q.add_rate_limited("two")
    assert q.waiting_for("two") == pytest.approx(0.001, abs=1e-12)
    clock.step(0.001)
    q.pump()
    q.add_rate_limited("two")
    assert q.waiting_for("two") == pytest.approx(0.002, abs=1e-12)

    q.forget("one")
    assert q.num_requeues("one") == 0
    q.done(item)
    clock.step(0.002)
    q.pump()  # both waiting entries fire
    q.add_rate_limited("one")
    assert q.waiting_for("one") == pytest.approx(0.001, abs=1e-12), "forget resets the backoff"


# ---- threaded ---------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_get_blocks_until_an_item_is_added() -> None:
    q: Queue[str] = Queue()
    got: list[tuple[str | None, bool]] = []
    worker = threading.Thread(target=lambda: got.append(q.get()))
    worker.start()
    worker.join(0.05)
    assert worker.is_alive() and not got, "get must block on an empty queue"
    q.add("a")
    worker.join(5)
    assert got == [("a", False)]


@pytest.mark.timeout(10)
def test_shut_down_releases_blocked_workers() -> None:
    q: Queue[str] = Queue()
    results: list[tuple[str | None, bool]] = []
    workers = [threading.Thread(target=lambda: results.append(q.get())) for _ in range(3)]
    for w in workers:
        w.start()
    q.shut_down()
    for w in workers:
        w.join(5)
    assert results == [(None, True)] * 3


@pytest.mark.timeout(10)
def test_shut_down_with_drain_blocks_until_done_and_shut_down_forces_it() -> None:
    q: Queue[str] = Queue()
    q.add("foo")
    q.add("bar")
    first, _ = q.get()
    second, _ = q.get()
    drained: list[bool] = []
    drainer = threading.Thread(target=lambda: drained.append(q.shut_down_with_drain()))
    drainer.start()
    wait_until(q.shutting_down, timeout=5, message="shutdown to begin")
    q.done(first)
    drainer.join(0.05)
    assert drainer.is_alive(), "one item is still being processed"
    q.done(second)
    drainer.join(5)
    assert drained == [True]

    q2: Queue[str] = Queue()
    q2.add("stuck")
    q2.get()
    forced: list[bool] = []
    drainer = threading.Thread(target=lambda: forced.append(q2.shut_down_with_drain()))
    drainer.start()
    wait_until(q2.shutting_down, timeout=5, message="shutdown to begin")
    q2.shut_down()  # stop waiting for the stuck worker
    drainer.join(5)
    assert forced == [False]


@pytest.mark.timeout(10)
def test_delaying_loop_thread_adds_items_when_ready() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    try:
        q.add_after("later", 0.2)
        q.add_after("sooner", 0.01)  # moves the head earlier: the loop must wake for it
        assert q.get() == ("sooner", False)
        assert q.get() == ("later", False)
    finally:
        q.shut_down()


@pytest.mark.timeout(20)
def test_one_key_is_never_processed_concurrently() -> None:
    q: Queue[int] = Queue()
    active: set[int] = set()
    overlaps: list[int] = []
    processed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            with lock:
                if item in active:
                    overlaps.append(item)
                active.add(item)
            q.add(item % 3)  # keep re-adding keys that may be in flight elsewhere
            with lock:
                active.discard(item)
                processed.append(item)
            q.done(item)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(300):
        q.add(i)
    wait_until(lambda: len(processed) >= 300, timeout=10, message="items to be processed")
    q.shut_down()
    for t in threads:
        t.join(5)
    assert overlaps == []
