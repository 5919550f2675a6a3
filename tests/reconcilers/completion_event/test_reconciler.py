"""The completion-event reconciler: which sinks get the event, what is recorded, when it retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller.keys import ObjectKey
from controller.reconcile import Result
from reconcilers.completion_event.delivery import EventDelivery
from reconcilers.completion_event.event import event_id
from reconcilers.completion_event.reconciler import (
    CompletionEventReconciler,
    EventDeliveryFailing,
    needs_delivery,
)
from tests.reconcilers.fakes import Fixture, RecordingSink
from tests.support.objects import run

KEY = ObjectKey("ns", "penguin-run-x")
UID = "0b1c2d3e-0000-4000-8000-000000000001"
EVENT_ID = event_id(UID, "r-1")
COMPLETED = {
    "providerId": "kfp:r-1",
    "completionState": "Succeeded",
    "finishedAt": "2026-01-02T03:00:00Z",
    "artifacts": [{"name": "serving-model", "location": "gs://m"}],
}


@dataclass
class Case:
    name: str
    status: dict[str, Any]
    failing: set[str] = field(default_factory=set)
    published_to: list[str] = field(default_factory=list)
    recorded: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)
    raises: bool = False


CASES = [
    Case(
        "a completed Run's event goes to every sink, then delivery is recorded",
        COMPLETED,
        published_to=["nats", "hooks"],
        recorded={"id": EVENT_ID, "deliveredTo": ["nats", "hooks"], "deliveredAt": "2026-01-02T03:04:05Z"},
    ),
    Case(
        "a sink that fails is retried and the others' deliveries are kept",
        COMPLETED,
        failing={"hooks"},
        published_to=["nats"],
        recorded={"id": EVENT_ID, "deliveredTo": ["nats"]},
        events=["EventDeliveryFailing"],
        raises=True,
    ),
    Case(
        "a retry sends only to the sinks that have not acknowledged yet",
        {**COMPLETED, "completionEvent": {"id": EVENT_ID, "deliveredTo": ["nats"]}},
        published_to=["hooks"],
        recorded={"id": EVENT_ID, "deliveredTo": ["nats", "hooks"], "deliveredAt": "2026-01-02T03:04:05Z"},
    ),
    Case(
        "a delivered event is not sent again",
        {
            **COMPLETED,
            "completionEvent": {"id": EVENT_ID, "deliveredTo": ["nats", "hooks"], "deliveredAt": "x"},
        },
    ),
    Case("a Run that has not completed has no event yet", {"providerId": "kfp:r-1"}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_delivery(case: Case) -> None:
    f = Fixture()
    f.add_runs(run(status=case.status))
    sinks = [
        RecordingSink("nats", failing="nats" in case.failing),
        RecordingSink("hooks", failing="hooks" in case.failing),
    ]
    reconciler = _reconciler(f, sinks)

    with capture_logs() as logs:
        if case.raises:
            with pytest.raises(EventDeliveryFailing):
                reconciler.reconcile(KEY)
        else:
            assert reconciler.reconcile(KEY) == Result()

    assert [s.name for s in sinks for _ in s.published] == case.published_to
    for sink in sinks:
        for event in sink.published:
            assert event["id"] == EVENT_ID
            assert event["data"]["artifacts"] == COMPLETED["artifacts"]
    patches = f.kube.status_patches()
    assert patches == ([{"status": {"completionEvent": case.recorded}}] if case.recorded else [])
    assert f.recorder.reasons() == case.events
    assert f.counter(f.metrics.event_deliveries, "hooks", "delivered") == ("hooks" in case.published_to)
    delivered = [line for line in logs if line["event"] == "completion event delivered"]
    if case.recorded and "deliveredAt" in case.recorded:
        (line,) = delivered
        assert (line["event_id"], line["sinks"]) == (EVENT_ID, case.recorded["deliveredTo"])
    else:
        assert delivered == [], "nothing is logged as delivered that some sink did not take"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_event_filter_lets_through_exactly_the_runs_with_something_to_deliver(case: Case) -> None:
    """Changes of Runs that fail ``needs_delivery`` are never queued: reconciling them would do nothing."""
    has_work = bool(case.published_to or case.recorded or case.events or case.raises)
    assert needs_delivery(run(status=case.status)) == has_work


def test_without_sinks_nothing_is_delivered_or_recorded() -> None:
    f = Fixture()
    f.add_runs(run(status=COMPLETED))
    reconciler = _reconciler(f, [])

    assert reconciler.reconcile(KEY) == Result()
    assert f.kube.requests == []


def _reconciler(f: Fixture, sinks: list[RecordingSink]) -> CompletionEventReconciler:
    delivery = EventDelivery(sinks=sinks, metrics=f.metrics, clock=f.clock, provider="kfp")
    return CompletionEventReconciler(
        runs=f.runs, delivery=delivery, kube=f.kube, recorder=f.recorder, clock=f.clock
    )
