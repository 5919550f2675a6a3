"""The TTL reconciler: re-read before deleting, delete with preconditions, report bad annotations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from controller.keys import ObjectKey
from controller.reconcile import Result
from reconcilers.api import RUN_CONFIGURATION_LABEL, RUNS, TTL_ANNOTATION
from reconcilers.indexes import OWNER_INDEX, owner_index
from reconcilers.ttl.reconciler import TtlReconciler, expiry_filter, owned_runs_that_may_expire
from tests.reconcilers.fakes import Fixture
from tests.support.objects import run, run_configuration

KEY = ObjectKey("ns", "penguin-run-x")
UID = "0b1c2d3e-0000-4000-8000-000000000001"
GLOBAL_TTL = timedelta(minutes=10)
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


def reconciler(f: Fixture, default_ttl: timedelta | None = GLOBAL_TTL) -> TtlReconciler:
    return TtlReconciler(
        runs=f.runs,
        run_configurations=f.run_configurations,
        kube=f.kube,
        recorder=f.recorder,
        metrics=f.metrics,
        clock=f.clock,
        default_ttl=default_ttl,
        sinks_configured=True,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ttl(case: Case) -> None:
    f = Fixture()
    f.add_runs(case.cached)
    f.kube.put(RUNS, case.fresh or case.cached)

    assert reconciler(f).reconcile(KEY) == case.result

    assert f.kube.verbs() == case.kube
    deletes = [r for r in f.kube.requests if r.verb == "delete"]
    # Conditional on the object the decision was taken on, not only on its identity.
    assert all(d.body == {"uid": UID, "resourceVersion": "1"} for d in deletes)
    assert f.recorder.reasons() == case.events
    assert f.counter(f.metrics.ttl_deletions) == len(deletes)


@pytest.mark.parametrize("default_ttl", [GLOBAL_TTL, None], ids=["a global TTL", "no global TTL"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_event_filter_lets_through_every_run_the_reconciler_may_act_on(
    case: Case, default_ttl: timedelta | None
) -> None:
    """Changes of Runs the filter keeps out are never queued: reconciling them does nothing."""
    if expiry_filter(default_ttl)(case.cached):
        return
    f = Fixture()
    f.add_runs(case.cached)
    f.kube.put(RUNS, case.fresh or case.cached)

    assert reconciler(f, default_ttl).reconcile(KEY) == Result()

    assert (f.kube.verbs(), f.recorder.reasons()) == ([], [])


def test_the_event_filter_keeps_out_runs_that_have_not_completed() -> None:
    may_expire = expiry_filter(GLOBAL_TTL)
    assert not may_expire(run(status={"providerId": "kfp:r-1"}))
    assert not may_expire(run(status={"providerId": "kfp:r-1"}, annotations={TTL_ANNOTATION: "0s"}))
    assert may_expire(run(status=completed()))


def test_every_change_of_a_completed_run_passes_the_event_filter() -> None:
    """A new TTL annotation, a delivered event or a deletion under way: the reconciler decides."""
    may_expire = expiry_filter(GLOBAL_TTL)
    assert may_expire(run(status=completed(), annotations={TTL_ANNOTATION: "0s"}))
    assert may_expire(run(status=completed(completionEvent={"deliveredAt": "2026-01-02T02:00:01Z"})))
    assert may_expire(run(status=completed(), deletionTimestamp="2026-01-02T02:00:02Z"))


def test_without_a_global_ttl_only_runs_with_their_own_annotation_pass_the_event_filter() -> None:
    may_expire = expiry_filter(None)
    assert not may_expire(run(status=completed(completionEvent=DELIVERED)))
    assert may_expire(run(status=completed(), annotations={TTL_ANNOTATION: "1h"}))
    # A bad annotation too: the reconcile reports it.
    assert may_expire(run(status=completed(), annotations={TTL_ANNOTATION: "banana"}))


@pytest.mark.parametrize(
    ("default_ttl", "queued"),
    [(GLOBAL_TTL, ["annotated", "done"]), (None, ["annotated"])],
    ids=["a global TTL", "no global TTL"],
)
def test_a_run_configuration_change_queues_its_runs_that_may_expire(
    default_ttl: timedelta | None, queued: list[str]
) -> None:
    f = Fixture()
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    owned = {"labels": {RUN_CONFIGURATION_LABEL: "rc"}}
    f.add_runs(
        run(name="done", status=completed(), **owned),
        run(name="annotated", status=completed(), annotations={TTL_ANNOTATION: "1h"}, **owned),
        run(name="running", status={"providerId": "kfp:r-1"}, **owned),
        run(name="not-owned", status=completed()),
    )
    map_func = owned_runs_that_may_expire(f.runs, expiry_filter(default_ttl))

    keys = map_func(run_configuration("rc"))

    assert sorted(key.name for key in keys) == queued
