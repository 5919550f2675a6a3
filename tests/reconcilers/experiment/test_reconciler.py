"""The Experiment reconciler, one reconcile at a time: cached Experiment and KFP state in; KFP requests,
status, Events and the requeue out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from controller.keys import ObjectKey
from controller.reconcile import Result
from reconcilers.api.experiment import experiment_version
from reconcilers.api.kfp_objects import ADOPT_ANNOTATION, NAMES_AS_IS, NAMES_NAMESPACED, Owner, owner_of
from reconcilers.clients import KfpError
from reconcilers.experiment.reconciler import ExperimentReconciler, ExperimentSettings
from reconcilers.timestamps import format_time
from tests.reconcilers.fakes import NOW
from tests.reconcilers.resource_fakes import (
    ResourceFixture,
    condition,
    fails_quietly_again,
    waiting_on_kfp,
    written,
)
from tests.support.resources import experiment

RECHECK, PRESENCE = 30.0, 900.0
KEY = ObjectKey("ns", "penguin-experiment")
OWNER = Owner("Experiment", "ns", "penguin-experiment", "uid-exp")


def reconciler(f: ResourceFixture, naming: str = NAMES_AS_IS) -> ExperimentReconciler:
    return ExperimentReconciler(
        experiments=f.experiments,
        kube=f.kube,
        kfp=f.kfp_resources,
        recorder=f.recorder,
        clock=f.clock,
        settings=ExperimentSettings(
            provider="kfp",
            naming=naming,
            recheck_interval=RECHECK,
            presence_check_interval=PRESENCE,
            deletion_timeout=timedelta(minutes=10),
        ),
    )


def synced(experiment_id: str, description: str = "penguins") -> dict[str, Any]:
    return {
        "synchronizationState": "Succeeded",
        "providerId": f"kfp:{experiment_id}",
        "version": experiment_version(description),
        "kfpName": "penguin-experiment",
        "observedGeneration": 1,
    }


def ours(f: ResourceFixture, description: str = "penguins", **kwargs: Any) -> str:
    return f.kfp_resources.add_experiment("penguin-experiment", OWNER.describe(description), **kwargs)[
        "experiment_id"
    ]


@dataclass
class Case:
    name: str
    obj: dict[str, Any]
    setup: Callable[[ResourceFixture], Any] = lambda f: None
    kfp: list[str] = field(default_factory=list)
    state: str | None = None
    reason: str | None = None
    events: list[str] = field(default_factory=list)
    result: Result = field(default_factory=lambda: Result(requeue_after=PRESENCE))


CASES = [
    Case(
        "a new Experiment: created in KFP with the description and the operator's marker",
        experiment(),
        kfp=["find_experiment", "create_experiment"],
        state="Succeeded",
        reason="Succeeded",
        events=["Created"],
    ),
    Case(
        "converged: nothing is asked of KFP until its presence check is due",
        experiment(finalizer=True, status=synced("e-1")),
        result=Result(requeue_after=PRESENCE),
    ),
    Case(
        "its KFP experiment exists already (created before a crash): taken",
        experiment(),
        setup=lambda f: ours(f),
        kfp=["find_experiment"],
        state="Succeeded",
        reason="Succeeded",
    ),
    Case(
        "an experiment of that name someone else made: refused, looked at again later",
        experiment(),
        setup=lambda f: f.kfp_resources.add_experiment("penguin-experiment", "by hand"),
        kfp=["find_experiment"],
        state="Failed",
        reason="ExperimentNameConflict",
        events=["ExperimentNameConflict"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "adopting someone else's experiment: used as it is",
        experiment(annotations={ADOPT_ANNOTATION: "true"}),
        setup=lambda f: f.kfp_resources.add_experiment("penguin-experiment", "by hand"),
        kfp=["find_experiment"],
        state="Succeeded",
        reason="Succeeded",
    ),
    Case(
        "a new description, no runs yet: the experiment is recreated with it",
        experiment("new words", finalizer=True, status=synced("e-x")),
        setup=lambda f: ours(f, "old words"),
        kfp=["find_experiment", "experiment_has_runs", "delete_experiment", "create_experiment"],
        state="Succeeded",
        reason="Succeeded",
        events=["Created"],
    ),
    Case(
        "a new description once it has runs: kept, and the condition says so",
        experiment("new words", finalizer=True, status=synced("e-x")),
        setup=lambda f: f.kfp_resources.experiment_runs.add(ours(f, "old words")),
        kfp=["find_experiment", "experiment_has_runs"],
        state="Succeeded",
        reason="DescriptionNotUpdated",
        events=["DescriptionNotUpdated"],
    ),
    Case(
        "its archived experiment comes back: unarchived",
        experiment(),
        setup=lambda f: ours(f, archived=True),
        kfp=["find_experiment", "unarchive_experiment"],
        state="Succeeded",
        events=["Unarchived"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reconcile(case: Case) -> None:
    f = ResourceFixture()
    case.setup(f)
    f.add_experiments(case.obj)

    result = reconciler(f).reconcile(KEY)

    assert f.kfp_resources.verbs() == case.kfp
    assert f.recorder.reasons() == case.events
    assert result == case.result
    patches = f.kube.status_patches()
    if case.state is None:
        assert patches == []
        return
    status = written(case.obj, patches)
    assert status["synchronizationState"] == case.state
    [synchronized] = [c for c in status["conditions"] if c["type"] == "Synchronized"]
    assert synchronized["reason"] == case.reason or case.reason is None
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == ("True" if case.state == "Succeeded" else "False")


def test_the_created_experiment_carries_the_description_and_the_namespaced_name() -> None:
    f = ResourceFixture()
    f.add_experiments(experiment("Penguin runs", namespace="team-a"))

    reconciler(f, NAMES_NAMESPACED).reconcile(ObjectKey("team-a", "penguin-experiment"))

    [created] = f.kfp_resources.experiments.values()
    assert created["display_name"] == "team-a-penguin-experiment"
    assert created["description"].startswith("Penguin runs\n")
    assert owner_of(created["description"]) == Owner("Experiment", "team-a", "penguin-experiment", "uid-exp")
    status = f.kube.status_patches()[-1]["status"]
    assert status["providerId"] == f"kfp:{created['experiment_id']}"
    assert status["version"] == experiment_version("Penguin runs")
    assert status["kfpName"] == "team-a-penguin-experiment"
    assert f.kube.verbs()[0] == "add_finalizer"


# -- deletion --------------------------------------------------------------------------------------


def deleted(experiment_id: str, **kwargs: Any) -> dict[str, Any]:
    return experiment(
        finalizer=True, status=synced(experiment_id), deletionTimestamp=format_time(NOW), **kwargs
    )


def test_deletion_deletes_an_experiment_without_runs() -> None:
    f = ResourceFixture()
    experiment_id = ours(f)
    f.add_experiments(deleted(experiment_id))

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.experiments == {}
    assert f.recorder.reasons() == ["DeletedFromKfp"]
    assert f.kube.verbs()[-1] == "remove_finalizer"


def test_deletion_archives_an_experiment_with_runs() -> None:
    f = ResourceFixture()
    experiment_id = ours(f)
    f.kfp_resources.experiment_runs.add(experiment_id)
    f.add_experiments(deleted(experiment_id))

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.experiments[experiment_id]["storage_state"] == "ARCHIVED"
    assert "delete_experiment" not in f.kfp_resources.verbs()
    assert f.recorder.reasons() == ["Archived"]
    assert f.kube.verbs()[-1] == "remove_finalizer"


def test_deletion_archives_when_kfp_refuses_to_delete() -> None:
    f = ResourceFixture()
    experiment_id = ours(f)
    f.kfp_resources.errors["delete_experiment"] = [KfpError("delete_experiment", 400, "has runs")]
    f.add_experiments(deleted(experiment_id))

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.experiments[experiment_id]["storage_state"] == "ARCHIVED"
    assert f.recorder.reasons() == ["Archived"]


def test_deletion_leaves_an_adopted_experiment_alone() -> None:
    f = ResourceFixture()
    experiment_id = f.kfp_resources.add_experiment("penguin-experiment", "by hand")["experiment_id"]
    f.add_experiments(deleted(experiment_id, annotations={ADOPT_ANNOTATION: "true"}))

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.verbs() == ["get_experiment"]
    assert f.kube.verbs()[-1] == "remove_finalizer"


@pytest.mark.parametrize(
    ("verb", "error", "reason"),
    [
        (
            "find_experiment",
            KfpError(
                "find_experiment", None, "ConnectionRefusedError: [Errno 111]", failure="cannot connect"
            ),
            "KfpUnavailable",
        ),
        ("create_experiment", KfpError("create_experiment", 500, "HTTP 500: database"), "KfpUnavailable"),
        # Multi-user KFP without kubeflow-pipelines-edit for the operator in the namespace.
        (
            "create_experiment",
            KfpError("create_experiment", 403, "HTTP 403: not authorized"),
            "KfpRequestFailed",
        ),
    ],
)
def test_a_kfp_call_that_fails_is_said_on_the_experiment_and_retried(
    verb: str, error: KfpError, reason: str
) -> None:
    f = ResourceFixture()
    f.add_experiments(experiment())
    f.kfp_resources.errors[verb] = [error, error]
    experiments = reconciler(f)

    with pytest.raises(KfpError):  # the work queue retries it with backoff
        experiments.reconcile(KEY)
    status = written(experiment(), f.kube.status_patches())
    assert waiting_on_kfp(status) == ("Creating", "Unknown", reason)
    assert (error.failure or error.message) in condition(status, "Synchronized")["message"]
    assert "providerId" not in status  # Runs naming it wait (ExperimentNotReady)
    assert f.recorder.reasons() == [reason]

    f.add_experiments(experiment(finalizer=True, status=status, resourceVersion="4"))
    fails_quietly_again(f, lambda: experiments.reconcile(KEY))


def test_kfp_failing_leaves_a_synchronized_experiment_usable() -> None:
    """A new description cannot reach KFP: the KFP experiment Runs use is still there."""
    f = ResourceFixture()
    experiment_id = ours(f, "old words")
    f.add_experiments(experiment("new words", finalizer=True, status=synced(experiment_id, "old words")))
    f.kfp_resources.errors["find_experiment"] = [KfpError("find_experiment", 503, "HTTP 503: busy")]

    with pytest.raises(KfpError):
        reconciler(f).reconcile(KEY)
    status = written(experiment(status=synced(experiment_id, "old words")), f.kube.status_patches())
    assert condition(status, "Synchronized")["reason"] == "KfpUnavailable"
    assert status["providerId"] == f"kfp:{experiment_id}"
    assert status["synchronizationState"] == "Succeeded"


def test_deletion_retries_while_kfp_is_unreachable() -> None:
    f = ResourceFixture()
    experiment_id = ours(f)
    f.kfp_resources.errors["get_experiment"] = [KfpError("get_experiment", None, "refused")]
    f.add_experiments(deleted(experiment_id))

    with pytest.raises(KfpError):
        reconciler(f).reconcile(KEY)
    assert "remove_finalizer" not in f.kube.verbs()
    assert f.kube.status_patches()[-1]["status"]["synchronizationState"] == "Deleting"


# ---- deleted in KFP behind the operator's back -----------------------------------------------------


def converged_experiment(f: ResourceFixture) -> tuple[ExperimentReconciler, str]:
    """A converged Experiment seen once, its presence check due; and its KFP experiment's id."""
    experiment_id = ours(f)
    f.add_experiments(experiment(finalizer=True, status=synced(experiment_id)))
    r = reconciler(f)
    assert r.reconcile(KEY) == Result(requeue_after=PRESENCE)
    assert f.kfp_resources.verbs() == [], "the first sight (a restart, say) asks KFP nothing"
    f.clock.step(PRESENCE)
    return r, experiment_id


def test_a_converged_experiment_checks_once_per_interval_that_it_is_in_kfp() -> None:
    f = ResourceFixture()
    r, _ = converged_experiment(f)

    assert r.reconcile(KEY) == Result(requeue_after=PRESENCE)
    assert f.kfp_resources.verbs() == ["get_experiment"]
    assert f.recorder.reasons() == [] and f.kube.status_patches() == []


def test_an_experiment_deleted_in_kfp_is_created_again() -> None:
    f = ResourceFixture()
    r, _ = converged_experiment(f)
    f.kfp_resources.experiments.clear()

    assert r.reconcile(KEY) == Result(requeue_after=PRESENCE)

    assert f.kfp_resources.verbs() == ["get_experiment", "find_experiment", "create_experiment"]
    assert f.recorder.reasons() == ["DeletedInKfp", "Created"]
    [made] = f.kfp_resources.experiments.values()
    assert written(experiment(), f.kube.status_patches())["providerId"] == f"kfp:{made['experiment_id']}"


def test_an_experiment_archived_in_kfp_is_unarchived() -> None:
    f = ResourceFixture()
    r, experiment_id = converged_experiment(f)
    f.kfp_resources.experiments[experiment_id]["storage_state"] = "ARCHIVED"

    r.reconcile(KEY)

    assert f.kfp_resources.verbs() == ["get_experiment", "find_experiment", "unarchive_experiment"]
    assert f.recorder.reasons() == ["Unarchived"]
    assert f.kfp_resources.experiments[experiment_id]["storage_state"] == "AVAILABLE"
