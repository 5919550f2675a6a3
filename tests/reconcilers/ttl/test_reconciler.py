"""The TTL reconciler: re-read before deleting, delete with preconditions, report bad annotations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from controller.keys import ObjectKey
from controller.reconcile import Result
from reconcilers.api import RUNS, TTL_ANNOTATION
from reconcilers.ttl.reconciler import TtlReconciler, may_expire
from tests.reconcilers.fakes import Fixture
from tests.support.objects import run

KEY = ObjectKey("ns", "penguin-run-x")
UID = "0b1c2d3e-0000-4000-8000-000000000001"
DELIVERED = {"id": "e", "deliveredTo": ["nats"], "deliveredAt": "2026-01-02T03:00:01Z"}


def completed(finished: str = "2026-01-02T02:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"providerId": "kfp:r-1", "completionState": "Failed", "finishedAt": finished, **extra}


@dataclass
class Case:
    name: str
    cached: dict[str, Any]
    fresh: dict[str, Any] | None = None  # what the API server holds, when different from the cache
    kube: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    result: Result = field(default_factory=Result)


CASES = [
    Case(
        "an expired Run is read again, then deleted with its UID as precondition",
        run(status=completed(completionEvent=DELIVERED)),
        kube=["get", "delete"],
        events=["DeletedAfterTTL"],
    ),
    Case(
        "a Run whose TTL has not passed is looked at again when it will have",
        run(status=completed("2026-01-02T03:00:00Z", completionEvent=DELIVERED)),
        result=Result(requeue_after=timedelta(minutes=5, seconds=55).total_seconds()),
    ),
    Case(
        "a Run whose event is not delivered yet is kept, and re-triggered by the delivery",
        run(status=completed()),
    ),
    Case(
        "an annotation the cache has not seen yet is respected",
        run(status=completed(completionEvent=DELIVERED)),
        fresh=run(status=completed(completionEvent=DELIVERED), annotations={TTL_ANNOTATION: "24h"}),
        kube=["get"],
        result=Result(requeue_after=timedelta(hours=22, minutes=55, seconds=55).total_seconds()),
    ),
    Case(
        "an invalid annotation is reported and the global TTL applies",
        run(status=completed(completionEvent=DELIVERED), annotations={TTL_ANNOTATION: "banana"}),
        kube=["get", "delete"],
        events=["InvalidTTL", "DeletedAfterTTL"],
    ),
    Case(
        "a negative annotation is reported, and never means right away",
        run(
            status=completed("2026-01-02T03:00:00Z", completionEvent=DELIVERED),
            annotations={TTL_ANNOTATION: "-5m"},
        ),
        events=["InvalidTTL"],
        result=Result(requeue_after=timedelta(minutes=5, seconds=55).total_seconds()),
    ),
    Case("a Run that has not completed is not considered", run(status={"providerId": "kfp:r-1"})),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ttl(case: Case) -> None:
    f = Fixture()
    f.add_runs(case.cached)
    f.kube.put(RUNS, case.fresh or case.cached)
    reconciler = TtlReconciler(
        runs=f.runs,
        run_configurations=f.run_configurations,
        kube=f.kube,
        recorder=f.recorder,
        metrics=f.metrics,
        clock=f.clock,
        default_ttl=timedelta(minutes=10),
        sinks_configured=True,
    )

    assert reconciler.reconcile(KEY) == case.result

    assert f.kube.verbs() == case.kube
    deletes = [r for r in f.kube.requests if r.verb == "delete"]
    # Conditional on the object the decision was taken on, not only on its identity.
    assert all(d.body == {"uid": UID, "resourceVersion": "1"} for d in deletes)
    assert f.recorder.reasons() == case.events
    assert f.counter(f.metrics.ttl_deletions) == len(deletes)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_event_filter_lets_through_every_run_the_reconciler_may_act_on(case: Case) -> None:
    """Changes of Runs that fail ``may_expire`` are never queued: reconciling them does nothing."""
    if not may_expire(case.cached):
        assert (case.kube, case.events, case.result) == ([], [], Result())


def test_the_event_filter_keeps_out_runs_that_have_not_completed() -> None:
    assert not may_expire(run(status={"providerId": "kfp:r-1"}))
    assert may_expire(run(status=completed()))


def test_every_change_of_a_completed_run_passes_the_event_filter() -> None:
    """A new TTL annotation, a delivered event or a deletion under way: the reconciler decides."""
    assert may_expire(run(status=completed(), annotations={TTL_ANNOTATION: "0s"}))
    assert may_expire(run(status=completed(completionEvent={"deliveredAt": "2026-01-02T02:00:01Z"})))
    assert may_expire(run(status=completed(), deletionTimestamp="2026-01-02T02:00:02Z"))
