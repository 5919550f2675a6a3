"""The manager in-process against a real API server: a trivial controller end to end.

The controller under test annotates every ConfigMap it sees (once: a converged object is not
written again) and reports an Event, which exercises the informers, the queue, the workers,
the kube helpers, the event recorder, leader election and shutdown together.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.events import NORMAL
from controller.informer import Informer
from controller.keys import ObjectKey
from controller.kube import Kube
from controller.manager import EXIT_FAILED, EXIT_OK, Manager, unsynced_caches
from controller.metrics import Metrics
from controller.reconcile import Result
from controller.resource import CONFIGMAPS, EVENTS, LEASES
from kfp_devstack.waiting import wait_until
from kfp_operator import settings as cfg

pytestmark = pytest.mark.timeout(120)

ANNOTATION = "test.kfp-operator/seen"


class Annotator:
    """Marks each ConfigMap once and records an Event about it on every pass."""

    def __init__(self, mgr: Manager) -> None:
        self.mgr = mgr
        self.informer = mgr.informer(CONFIGMAPS)
        self.writes = 0
        self._lock = threading.Lock()

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self.informer.get(key)
        if obj is None:
            return Result()
        self.mgr.event_recorder.event(obj, NORMAL, "Seen", "the test controller saw this object")
        if ANNOTATION not in (obj["metadata"].get("annotations") or {}):
            self.mgr.kube.patch_metadata(CONFIGMAPS, key, {"annotations": {ANNOTATION: "yes"}})
            with self._lock:
                self.writes += 1
        return Result()


def manager_config(namespace: str, **values: Any) -> cfg.Config:
    return cfg.load(
        {
            "watchNamespaces": [namespace],
            "leaderElection.namespace": namespace,
            "leaderElection.leaseDuration": "3s",
            "leaderElection.renewDeadline": "2s",
            "leaderElection.retryPeriod": "500ms",
            "metrics.bindAddress": "0",
            "health.bindAddress": "127.0.0.1:0",
            "shutdownTimeout": "5s",
            **values,
        }
    )


def make_manager(kube: Kube, namespace: str, **values: Any) -> tuple[Manager, Annotator]:
    mgr = Manager(manager_config(namespace, **values), kube)
    annotator = Annotator(mgr)
    mgr.add_controller("annotator", annotator, primary=annotator.informer, workers=2)
    return mgr, annotator


def annotated(kube: Kube, namespace: str, name: str) -> bool:
    obj = kube.get(CONFIGMAPS, ObjectKey(namespace, name))
    return ANNOTATION in (obj["metadata"].get("annotations") or {})


def events_about(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    return kube.list(EVENTS, namespace, field_selector=f"involvedObject.name={name}")


def holder(kube: Kube, namespace: str) -> str:
    lease = kube.get_or_none(LEASES, ObjectKey(namespace, "kfp-operator-leader")) or {}
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def test_a_controller_reconciles_records_events_and_converges(kube: Kube, namespace: str) -> None:
    kube.create(CONFIGMAPS, {"metadata": {"name": "before", "namespace": namespace}})
    mgr, annotator = make_manager(kube, namespace)
    stop = threading.Event()
    exit_status: list[int] = []
    runner = threading.Thread(target=lambda: exit_status.append(mgr.run(stop)))
    runner.start()
    try:
        wait_until(lambda: holder(kube, namespace) == mgr.identity, timeout=30, message="leadership")
        wait_until(lambda: annotated(kube, namespace, "before"), timeout=30, message="the existing object")
        kube.create(CONFIGMAPS, {"metadata": {"name": "after", "namespace": namespace}})
        wait_until(lambda: annotated(kube, namespace, "after"), timeout=30, message="the new object")
        # Each annotation write causes one more reconcile (an update event), which records the
        # same event again: it must aggregate into one Event with a count.
        wait_until(
            lambda: [e.get("count") for e in events_about(kube, namespace, "after")] == [2],
            timeout=30,
            message=lambda: f"one aggregated Event; have {events_about(kube, namespace, 'after')}",
        )
        (event,) = events_about(kube, namespace, "after")
        assert event["reason"] == "Seen" and event["type"] == "Normal"
        assert event["reportingComponent"] == "kfp-operator" and event["reportingInstance"] == mgr.identity
        assert event["involvedObject"]["kind"] == "ConfigMap"
        assert annotator.writes == 2, "a converged object is not written again"
        registry = mgr.metrics.registry
        labels = {"controller": "annotator", "result": "success"}
        assert (registry.get_sample_value("controller_runtime_reconcile_total", labels) or 0) >= 4
    finally:
        stop.set()
        runner.join(30)
    assert exit_status == [EXIT_OK]
    assert holder(kube, namespace) == "", "released on shutdown"


def test_events_and_lease_renewals_have_a_rate_limit_of_their_own(
    kube: Kube, namespace: str, control_plane: Any
) -> None:
    throttled = Kube(control_plane.admin_configuration(), Metrics(process_collector=False), qps=5, burst=5)
    mgr = Manager(manager_config(namespace), throttled)
    mgr.start()
    try:
        wait_until(lambda: holder(kube, namespace) == mgr.identity, timeout=30, message="leadership")
        # From here the reconcilers' client owes 100 s of requests, as after a long burst.
        for _ in range(500):
            throttled.limiter.reserve()
        lease_key = ObjectKey(namespace, "kfp-operator-leader")
        lease = kube.get(LEASES, lease_key)
        mgr.event_recorder.event(lease, NORMAL, "Throttled", "the reconcilers' client is out of tokens")
        wait_until(
            lambda: events_about(kube, namespace, "kfp-operator-leader"),
            timeout=15,
            message="the Event, written on the recorder's own budget",
        )
        renewed = lease["spec"]["renewTime"]
        wait_until(
            lambda: kube.get(LEASES, lease_key)["spec"]["renewTime"] != renewed,
            timeout=15,
            message="a Lease renewal, on leader election's own budget",
        )
        assert mgr.is_leader() and not mgr.failed
    finally:
        status = mgr.shutdown()
        throttled.close()
    assert status == EXIT_OK
    assert holder(kube, namespace) == "", "released on shutdown, on leader election's own budget"


def test_without_leader_election_controllers_start_at_once(kube: Kube, namespace: str) -> None:
    kube.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": namespace}})
    mgr, _ = make_manager(kube, namespace, **{"leaderElection.enabled": False})
    mgr.start()
    try:
        wait_until(lambda: annotated(kube, namespace, "x"), timeout=30, message="reconcile")
        assert mgr.is_leader()
        assert holder(kube, namespace) == ""
    finally:
        assert mgr.shutdown() == EXIT_OK


def test_losing_the_lease_stops_the_controllers_and_fails(kube: Kube, namespace: str) -> None:
    mgr, _ = make_manager(kube, namespace)
    mgr.start()
    try:
        wait_until(lambda: mgr.controllers_started, timeout=30, message="leadership and controllers")
        # Someone else takes the lease (as after a network partition outlasting the lease).
        key = ObjectKey(namespace, "kfp-operator-leader")
        lease = kube.get(LEASES, key)
        lease["spec"]["holderIdentity"] = "intruder"
        lease["spec"]["leaseDurationSeconds"] = 3600
        kube.replace(LEASES, lease)
        assert mgr.wait_failed(30), "the manager notices within its renew deadline"
        assert not mgr.is_leader()
    finally:
        status = mgr.shutdown()
    assert status == EXIT_FAILED
    assert holder(kube, namespace) == "intruder", "a lost lease is not released by the loser"
    (controller,) = mgr.controllers
    assert controller.queue.shutting_down(), "the workers were stopped"


def test_leader_runnables_start_after_controllers_and_stop_before_the_release(
    kube: Kube, namespace: str
) -> None:
    mgr, _ = make_manager(kube, namespace)
    seen: list[tuple[str, bool, str]] = []

    class Poller:
        def start(self) -> None:
            seen.append(("start", mgr.controllers[0].queue.shutting_down(), holder(kube, namespace)))

        def stop(self) -> None:
            seen.append(("stop", mgr.controllers[0].queue.shutting_down(), holder(kube, namespace)))

    mgr.add_runnable(Poller())
    mgr.start()
    try:
        wait_until(lambda: seen, timeout=30, message="the runnable to start")
    finally:
        assert mgr.shutdown() == EXIT_OK
    assert seen == [("start", False, mgr.identity), ("stop", True, mgr.identity)]
    assert holder(kube, namespace) == ""


def test_informers_started_early_list_before_the_controllers_exist_and_are_shared(
    kube: Kube, namespace: str
) -> None:
    kube.create(CONFIGMAPS, {"metadata": {"name": "listed-early", "namespace": namespace}})
    mgr = Manager(manager_config(namespace), kube)
    configmaps = mgr.informer(CONFIGMAPS)
    mgr.start_informers()
    mgr.start_informers()  # a second call starts nothing more
    assert configmaps.wait_for_sync(30), "listed with no controller composed and the manager not started"
    assert configmaps.get(ObjectKey(namespace, "listed-early")) is not None
    reflector = f"reflector-{CONFIGMAPS}/{namespace}"
    assert [t.name for t in threading.enumerate() if t.name == reflector] == [reflector]

    # Composed afterwards: the controller gets the informer already listing, and one requested
    # later is started with the manager.
    annotator = Annotator(mgr)
    assert annotator.informer is configmaps
    leases = mgr.informer(LEASES)
    mgr.add_controller("annotator", annotator, primary=annotator.informer, workers=2)
    assert not leases.has_synced()
    stop = threading.Event()
    runner = threading.Thread(target=lambda: mgr.run(stop))
    runner.start()
    try:
        wait_until(leases.has_synced, timeout=30, message="the informer requested after the early start")
        wait_until(lambda: annotated(kube, namespace, "listed-early"), timeout=30, message="the reconcile")
    finally:
        stop.set()
        runner.join(30)


@pytest.mark.parametrize(
    ("leading", "prompt_listed", "all_listed", "says"),
    [
        pytest.param(True, False, False, "not synced: configmaps", id="leader listing the prompt objects"),
        pytest.param(True, True, False, None, id="leader, the rest being listed"),
        pytest.param(False, True, False, "not synced: configmaps", id="standby, the rest being listed"),
        pytest.param(False, True, True, None, id="standby with everything"),
    ],
)
def test_a_leader_is_ready_with_the_prompt_objects_and_a_standby_with_everything(
    leading: bool, prompt_listed: bool, all_listed: bool, says: str | None
) -> None:
    informer = Informer(CONFIGMAPS, lambda ns: None, clock=FakeClock(), prompt_selector="metadata.name=a")  # type: ignore[arg-type,return-value]
    (reflector,) = informer.reflectors
    if prompt_listed:
        reflector._prompt_synced.set()
    if all_listed:
        reflector._synced.set()
    assert unsynced_caches([informer], leading=leading) == says
