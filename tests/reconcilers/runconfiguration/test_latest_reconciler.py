"""The latest-run reconciler: a RunConfiguration's latest succeeded run, from the Runs it owns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.keys import ObjectKey
from controller.reconcile import Result
from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.indexes import OWNER_INDEX, owner_index
from reconcilers.runconfiguration.latest_reconciler import LatestRunReconciler
from tests.reconcilers.fakes import Fixture
from tests.support.objects import run, run_configuration

RC = "generator"
KEY = ObjectKey("ns", RC)


def owned(name: str, state: str, finished: str, location: str) -> dict[str, Any]:
    return run(
        name=name,
        uid=f"uid-{name}",
        labels={RUN_CONFIGURATION_LABEL: RC},
        status={
            "providerId": f"kfp:{name}",
            "completionState": state,
            "finishedAt": finished,
            "artifacts": [{"name": "examples", "location": location}],
        },
    )


def latest(name: str, finished: str, location: str) -> dict[str, Any]:
    return {
        "providerId": f"kfp:{name}",
        "artifacts": [{"name": "examples", "location": location}],
        "runName": f"ns/{name}",
        "finishedAt": finished,
    }


@dataclass
class Case:
    name: str
    runs: list[dict[str, Any]]
    current: dict[str, Any] | None = None
    written: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)


CASES = [
    Case(
        "the newest succeeded Run becomes the latest",
        [
            owned("a", "Succeeded", "2026-01-02T01:00:00Z", "gs://a"),
            owned("b", "Succeeded", "2026-01-02T02:00:00Z", "gs://b"),
        ],
        written=latest("b", "2026-01-02T02:00:00Z", "gs://b"),
        events=["LatestRunUpdated"],
    ),
    Case(
        "a failed Run never becomes the latest",
        [
            owned("a", "Succeeded", "2026-01-02T01:00:00Z", "gs://a"),
            owned("b", "Failed", "2026-01-02T02:00:00Z", "gs://b"),
        ],
        written=latest("a", "2026-01-02T01:00:00Z", "gs://a"),
        events=["LatestRunUpdated"],
    ),
    Case(
        "an older run completing late does not replace a newer latest",
        [owned("old", "Succeeded", "2026-01-02T01:00:00Z", "gs://old")],
        current=latest("gone", "2026-01-02T05:00:00Z", "gs://new"),
    ),
    Case(
        "a latest that is already current is not written again",
        [owned("a", "Succeeded", "2026-01-02T01:00:00Z", "gs://a")],
        current=latest("a", "2026-01-02T01:00:00Z", "gs://a"),
    ),
    Case("no succeeded Run, nothing to write", []),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_latest_succeeded_run(case: Case) -> None:
    f = Fixture()
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    f.add_runs(*case.runs)
    rc = run_configuration(RC, succeeded=case.current)
    rc["metadata"]["resourceVersion"] = "7"
    f.add_run_configurations(rc)
    reconciler = LatestRunReconciler(
        runs=f.runs, run_configurations=f.run_configurations, kube=f.kube, recorder=f.recorder
    )

    assert reconciler.reconcile(KEY) == Result()

    expected = (
        [{"status": {"latestRuns": {"succeeded": case.written}}, "metadata": {"resourceVersion": "7"}}]
        if case.written
        else []
    )
    assert f.kube.status_patches() == expected
    assert f.recorder.reasons() == case.events
