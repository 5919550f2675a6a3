"""The runner: controller-runtime's outcome table, metrics, log context, watches and shutdown.

Deterministic: a fake clock, no queue thread, and ``process_next_work_item`` called directly,
except for the shutdown tests, which run real worker threads.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from controller import transport
from controller.clock import FakeClock
from controller.informer import Informer
from controller.keys import ObjectKey
from controller.logs import merge_reconcile_context
from controller.metrics import Metrics
from controller.reconcile import Result, TerminalError
from controller.resource import CONFIGMAPS, LEASES
from controller.runner import CacheSyncError, Controller, Watch
from controller.store import namespaced_index_value
from kfp_devstack.waiting import wait_until

KEY = ObjectKey("ns", "a")
log = structlog.get_logger("test.reconciler")


class Scripted:
    """A reconciler whose outcomes are scripted: a Result to return or an exception to raise."""

    def __init__(self, *outcomes: Result | Exception | Callable[[ObjectKey], Result]) -> None:
        self.outcomes = deque(outcomes)
        self.calls: list[ObjectKey] = []
        self.retries_disabled: list[bool] = []

    def reconcile(self, key: ObjectKey) -> Result:
        self.calls.append(key)
        self.retries_disabled.append(not transport.retries_enabled())
        log.info("reconciling")
        outcome = self.outcomes.popleft() if self.outcomes else Result()
        if isinstance(outcome, Exception):
            raise outcome
        if callable(outcome):
            return outcome(key)
        return outcome


def informer(resource: Any = CONFIGMAPS) -> Informer:
    return Informer(resource, lambda ns: None, clock=FakeClock())  # type: ignore[arg-type,return-value]


def controller_for(reconciler: Scripted, **kwargs: Any) -> tuple[Controller, Metrics, FakeClock]:
    metrics, clock = Metrics(process_collector=False), FakeClock(start=0.0)
    controller = Controller(
        "test",
        reconciler,
        primary=informer(),
        metrics=metrics,
        clock=clock,
        start_queue_thread=False,
        **kwargs,
    )
    return controller, metrics, clock


def total(metrics: Metrics, result: str) -> float | None:
    return metrics.registry.get_sample_value(
        "controller_runtime_reconcile_total", {"controller": "test", "result": result}
    )


def counter(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"controller": "test"})


def reconcile_once(controller: Controller, key: ObjectKey = KEY) -> None:
    controller.queue.add(key)
    assert controller.process_next_work_item()


def test_success_forgets_and_counts_success() -> None:
    reconciler = Scripted(RuntimeError("boom"), Result())
    controller, metrics, clock = controller_for(reconciler)
    reconcile_once(controller)
    assert controller.queue.num_requeues(KEY) == 1
    clock.step(1)
    controller.queue.pump()
    assert controller.process_next_work_item()
    assert controller.queue.num_requeues(KEY) == 0, "success forgets the failure history"
    assert controller.queue.num_waiting() == 0 and len(controller.queue) == 0
    assert total(metrics, "success") == 1 and total(metrics, "error") == 1


def test_requeue_after_forgets_and_schedules_exactly() -> None:
    reconciler = Scripted(RuntimeError("boom"), Result(requeue_after=30.0))
    controller, metrics, clock = controller_for(reconciler)
    reconcile_once(controller)
    clock.step(1)
    controller.queue.pump()
    controller.process_next_work_item()
    assert controller.queue.waiting_for(KEY) == pytest.approx(30.0)
    assert controller.queue.num_requeues(KEY) == 0
    assert total(metrics, "requeue_after") == 1
    clock.step(30)
    controller.queue.pump()
    assert len(controller.queue) == 1


def test_errors_are_retried_with_per_item_backoff() -> None:
    reconciler = Scripted(RuntimeError("one"), RuntimeError("two"))
    controller, metrics, clock = controller_for(reconciler)
    reconcile_once(controller)
    assert controller.queue.waiting_for(KEY) == pytest.approx(0.005)
    clock.step(0.005)
    controller.queue.pump()
    assert controller.process_next_work_item()
    assert controller.queue.waiting_for(KEY) == pytest.approx(0.010)
    assert controller.queue.num_requeues(KEY) == 2
    assert total(metrics, "error") == 2
    assert counter(metrics, "controller_runtime_reconcile_errors_total") == 2
    assert counter(metrics, "controller_runtime_terminal_reconcile_errors_total") == 0


def test_terminal_errors_are_counted_and_not_retried() -> None:
    reconciler = Scripted(RuntimeError("transient"), TerminalError("invalid spec"))
    controller, metrics, clock = controller_for(reconciler)
    reconcile_once(controller)
    clock.step(1)
    controller.queue.pump()
    controller.process_next_work_item()
    assert controller.queue.num_waiting() == 0 and len(controller.queue) == 0, "not requeued"
    assert controller.queue.num_requeues(KEY) == 1, "not forgotten either"
    assert total(metrics, "error") == 2
    assert counter(metrics, "controller_runtime_reconcile_errors_total") == 2
    assert counter(metrics, "controller_runtime_terminal_reconcile_errors_total") == 1


def test_deprecated_requeue_is_rate_limited() -> None:
    controller, metrics, _ = controller_for(Scripted(Result(requeue=True)))
    reconcile_once(controller)
    assert controller.queue.waiting_for(KEY) == pytest.approx(0.005)
    assert total(metrics, "requeue") == 1


def test_reconcile_time_and_active_workers() -> None:
    observed: list[float | None] = []
    metrics_box: list[Metrics] = []

    def during(key: ObjectKey) -> Result:
        observed.append(counter(metrics_box[0], "controller_runtime_active_workers"))
        clock.step(0.3)
        return Result()

    controller, metrics, clock = controller_for(Scripted(during))
    metrics_box.append(metrics)
    reconcile_once(controller)
    assert observed == [1]
    assert counter(metrics, "controller_runtime_active_workers") == 0
    assert counter(metrics, "controller_runtime_reconcile_time_seconds_count") == 1
    assert counter(metrics, "controller_runtime_reconcile_time_seconds_sum") == pytest.approx(0.3)
    assert counter(metrics, "controller_runtime_max_concurrent_reconciles") == 1


def test_each_reconcile_logs_with_its_own_context() -> None:
    reconciler = Scripted(Result(), RuntimeError("boom"))
    controller, _, _ = controller_for(reconciler)
    with capture_logs(processors=[merge_reconcile_context]) as logs:
        reconcile_once(controller, ObjectKey("ns", "a"))
        reconcile_once(controller, ObjectKey("other", "b"))
    inside = [entry for entry in logs if entry["event"] == "reconciling"]
    assert [(e["namespace"], e["name"]) for e in inside] == [("ns", "a"), ("other", "b")]
    for entry in logs:
        assert entry["controller"] == "test"
        assert entry["controllerKind"] == "ConfigMap"
        uuid.UUID(entry["reconcileID"])
    ids = {e["reconcileID"] for e in inside}
    assert len(ids) == 2, "a fresh reconcileID per reconcile"
    error = next(e for e in logs if e["event"] == "Reconciler error")
    assert error["name"] == "b" and error["log_level"] == "error"
    with capture_logs(processors=[merge_reconcile_context]) as after:
        structlog.get_logger("test").info("after")
    assert after == [{"event": "after", "log_level": "info"}], "no context leaks out of a reconcile"


def test_api_retries_are_disabled_inside_reconciles_only() -> None:
    reconciler = Scripted(Result())
    controller, _, _ = controller_for(reconciler)
    reconcile_once(controller)
    assert reconciler.retries_disabled == [True]
    assert transport.retries_enabled()


def test_watches_enqueue_the_primary_key_and_mapped_keys() -> None:
    runs = informer(CONFIGMAPS)
    configs = informer(LEASES)
    runs.add_indexer("rc", lambda run: [namespaced_index_value(run["metadata"]["namespace"], run["rc"])])

    def runs_referencing(rc: dict[str, Any]) -> list[ObjectKey]:
        return runs.store.index_keys(
            "rc", namespaced_index_value(rc["metadata"]["namespace"], rc["metadata"]["name"])
        )

    controller = Controller(
        "test",
        Scripted(),
        primary=runs,
        watches=[Watch(configs, runs_referencing)],
        metrics=Metrics(process_collector=False),
        clock=FakeClock(),
        start_queue_thread=False,
    )
    for name, rc in (("r1", "x"), ("r2", "x"), ("r3", "y")):
        runs._upsert({"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"}, "rc": rc})
    controller.start_watches()  # existing objects are replayed as adds
    assert len(controller.queue) == 3
    for _ in range(3):
        controller.process_next_work_item()

    configs._upsert({"metadata": {"name": "x", "namespace": "ns", "resourceVersion": "2"}})
    keys = sorted(controller.queue.get()[0] for _ in range(len(controller.queue)))  # type: ignore[type-var]
    assert keys == [ObjectKey("ns", "r1"), ObjectKey("ns", "r2")]


def test_a_predicate_keeps_changes_of_primary_objects_that_fail_it_out_of_the_queue() -> None:
    runs = informer(CONFIGMAPS)
    configs = informer(LEASES)
    controller = Controller(
        "test",
        Scripted(),
        primary=runs,
        watches=[Watch(configs, lambda rc: [ObjectKey("ns", "quiet")])],
        metrics=Metrics(process_collector=False),
        clock=FakeClock(),
        start_queue_thread=False,
        predicate=lambda obj: bool(obj.get("wanted")),
    )
    controller.start_watches()

    def obj(name: str, rv: str, wanted: bool) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}, "wanted": wanted}

    def queued() -> list[ObjectKey]:
        keys = [controller.queue.get()[0] for _ in range(len(controller.queue))]
        for key in keys:
            controller.queue.done(key)  # type: ignore[arg-type]
        return sorted(keys)  # type: ignore[type-var]

    runs._upsert(obj("quiet", "1", False))
    runs._upsert(obj("busy", "1", True))
    assert queued() == [ObjectKey("ns", "busy")]

    runs._upsert(obj("quiet", "2", False))
    runs._upsert(obj("busy", "2", False))
    assert queued() == [], "an update is filtered by the object's new state"

    runs._upsert(obj("quiet", "3", True))
    assert queued() == [ObjectKey("ns", "quiet")]

    configs._upsert({"metadata": {"name": "x", "namespace": "ns", "resourceVersion": "1"}})
    runs._upsert(obj("quiet", "4", False))
    assert queued() == [ObjectKey("ns", "quiet")], "keys mapped from watches are not filtered"


def test_a_predicate_judges_a_deletion_by_the_last_known_state_tombstones_included() -> None:
    runs = informer(CONFIGMAPS)
    controller = Controller(
        "test",
        Scripted(),
        primary=runs,
        metrics=Metrics(process_collector=False),
        clock=FakeClock(),
        start_queue_thread=False,
        predicate=lambda obj: bool(obj.get("wanted")),
    )
    controller.start_watches()
    wanted = {"metadata": {"name": "w", "namespace": "ns", "resourceVersion": "1"}, "wanted": True}
    unwanted = {"metadata": {"name": "u", "namespace": "ns", "resourceVersion": "1"}, "wanted": False}
    runs._replace([wanted, unwanted], None)
    assert len(controller.queue) == 1
    controller.queue.done(controller.queue.get()[0])  # type: ignore[arg-type]

    runs._replace([], None)  # both gone while the watch was down: tombstones
    assert [controller.queue.get()[0] for _ in range(len(controller.queue))] == [ObjectKey("ns", "w")]


def test_a_failed_reconcile_is_retried_by_the_rate_limiter_whatever_the_predicate_says() -> None:
    reconciler = Scripted(RuntimeError("sink down"), Result())
    controller, _, clock = controller_for(reconciler, predicate=lambda obj: False)
    controller.queue.add(KEY)
    controller.process_next_work_item()
    assert controller.queue.waiting_for(KEY) == pytest.approx(0.005)
    clock.step(0.005)
    controller.queue.pump()
    assert controller.process_next_work_item()
    assert reconciler.calls == [KEY, KEY]


# ---- shutdown with real workers --------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_stop_drains_in_flight_work_and_drops_queued_keys() -> None:
    entered, release = threading.Event(), threading.Event()
    reconciled: list[ObjectKey] = []

    def slow(key: ObjectKey) -> Result:
        entered.set()
        release.wait(10)
        reconciled.append(key)
        return Result()

    reconciler = Scripted(slow)
    primary = informer()
    primary.reflectors[0]._synced.set()
    controller = Controller("test", reconciler, primary=primary, metrics=Metrics(process_collector=False))
    controller.start()
    controller.queue.add(ObjectKey("ns", "first"))
    assert entered.wait(10)
    controller.queue.add(ObjectKey("ns", "queued"))
    results: list[bool] = []
    stopping = threading.Thread(target=lambda: results.append(controller.stop(timeout=10)))
    stopping.start()
    wait_until(controller.queue.shutting_down, timeout=5, message="intake to stop")
    controller.queue.add(ObjectKey("ns", "late"))
    release.set()
    stopping.join(15)
    assert results == [True]
    assert reconciled == [ObjectKey("ns", "first")], "queued keys are dropped, late adds refused"


@pytest.mark.timeout(20)
def test_stop_gives_up_on_a_stuck_reconcile_after_the_timeout() -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck(key: ObjectKey) -> Result:
        entered.set()
        release.wait(15)
        return Result()

    primary = informer()
    primary.reflectors[0]._synced.set()
    controller = Controller(
        "test", Scripted(stuck), primary=primary, metrics=Metrics(process_collector=False)
    )
    controller.start()
    controller.queue.add(KEY)
    assert entered.wait(10)
    try:
        assert controller.stop(timeout=0.2) is False
    finally:
        release.set()
        for worker in controller._threads:
            worker.join(10)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("complete_cache", [False, True])
def test_a_controller_starts_on_the_prompt_objects_only_when_it_does_not_need_them_all(
    complete_cache: bool,
) -> None:
    primary = Informer(CONFIGMAPS, lambda ns: None, clock=FakeClock(), prompt_selector="status.done=")  # type: ignore[arg-type,return-value]
    primary.reflectors[0]._prompt_synced.set()  # the prompt objects are listed, the rest is not
    controller = Controller(
        "test",
        Scripted(Result()),
        primary=primary,
        metrics=Metrics(process_collector=False),
        cache_sync_timeout=0.2,
        complete_cache=complete_cache,
    )
    try:
        if complete_cache:
            with pytest.raises(CacheSyncError):
                controller.start()
            assert controller._threads == []
        else:
            controller.start()
            assert controller._threads, "its workers run while the rest is listed"
    finally:
        controller.stop(timeout=5)
