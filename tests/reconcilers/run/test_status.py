"""The desired status at each stage, and the merge patch that gets there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconcilers.api.run import Artifact, RunView
from reconcilers.run.resolve import PipelineVersion, Rejected, Resolved, Waiting
from reconcilers.run.status import (
    completed,
    merge_patch,
    ready,
    rejected,
    submitted,
    vanished,
    waiting,
)
from reconcilers.run.tracking import KfpRunObservation
from tests.support.objects import run

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = datetime(2026, 1, 2, 3, 9, 0, tzinfo=UTC)
RESOLVED = Resolved(
    pipeline_id="p-1",
    version=PipelineVersion("p-1", "v-1", "v1-abcdef"),
    experiment_id="e-1",
    experiment_name="penguin-experiment",
    parameters={"TRAINING_RUNS": 100},
    dependencies={"rc": {"providerId": "kfp:eg", "artifacts": [{"name": "examples", "location": "s3://x"}]}},
)


def conditions(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_waiting_says_why_and_keeps_synchronization_creating() -> None:
    status = waiting(RunView(run()), Waiting("PipelineNotFound", "pipeline p does not exist", {}, True), NOW)

    assert status["synchronizationState"] == "Creating"
    assert conditions(status) == {
        "Synchronized": ("Unknown", "Creating"),
        "DependenciesResolved": ("False", "PipelineNotFound"),
        "Ready": ("False", "PipelineNotFound"),
    }
    assert status["observedGeneration"] == 1


def test_recomputing_an_unchanged_status_yields_no_patch() -> None:
    result = Waiting("PipelineNotFound", "pipeline p does not exist", {}, True)
    first = waiting(RunView(run()), result, NOW)

    second = waiting(RunView(run(status=first)), result, LATER)

    assert merge_patch(first, second) == {}


def test_a_changed_reason_keeps_the_transition_time_while_the_status_is_unchanged() -> None:
    first = waiting(RunView(run()), Waiting("PipelineNotFound", "p", {}, True), NOW)

    second = waiting(RunView(run(status=first)), Waiting("ExperimentNotFound", "e", {}, True), LATER)

    dependencies = next(c for c in second["conditions"] if c["type"] == "DependenciesResolved")
    assert dependencies["reason"] == "ExperimentNotFound"
    assert dependencies["lastTransitionTime"] == "2026-01-02T03:04:05Z"


def test_submitted_freezes_the_resolution_and_records_the_provider_id() -> None:
    observation = KfpRunObservation("r-1", "PENDING", NOW, None)

    status = submitted(RunView(run()), RESOLVED, "kfp", observation, NOW)

    assert status["providerId"] == "kfp:r-1"
    assert status["synchronizationState"] == "Succeeded"
    assert status["observedPipelineVersion"] == "v1-abcdef"
    assert status["dependencies"] == {"runConfigurations": RESOLVED.dependencies}
    assert len(status["version"]) == 6
    assert status["startedAt"] == "2026-01-02T03:04:05Z"
    assert conditions(status) == {
        "Synchronized": ("True", "Succeeded"),
        "DependenciesResolved": ("True", "Resolved"),
        "Completed": ("False", "Pending"),
        "Ready": ("False", "Pending"),
    }


def test_rejected_fails_synchronization_with_the_reason() -> None:
    status = rejected(RunView(run()), Rejected("InvalidArtifactFilter", "artifact m: bad"), NOW)

    assert status["synchronizationState"] == "Failed"
    assert conditions(status)["DependenciesResolved"] == ("False", "InvalidArtifactFilter")


def test_success_records_outcome_times_and_artifacts() -> None:
    current = submitted(RunView(run()), RESOLVED, "kfp", KfpRunObservation("r-1", "PENDING", NOW, None), NOW)
    observation = KfpRunObservation("r-1", "SUCCEEDED", NOW, LATER)

    status = completed(
        RunView(run(status=current)), observation, [Artifact("serving-model", "s3://m")], LATER
    )

    assert status["completionState"] == "Succeeded"
    assert status["finishedAt"] == "2026-01-02T03:09:00Z"
    assert status["markedCompletedAt"] == "2026-01-02T03:09:00Z"
    assert status["artifacts"] == [{"name": "serving-model", "location": "s3://m"}]
    assert conditions(status)["Completed"] == ("True", "Succeeded")
    patch = merge_patch(current, status)
    assert set(patch) == {"completionState", "finishedAt", "markedCompletedAt", "artifacts", "conditions"}


def test_failure_and_cancellation_complete_as_failed_without_artifacts() -> None:
    for state in ("FAILED", "CANCELED"):
        status = completed(RunView(run()), KfpRunObservation("r-1", state, NOW, LATER), [], LATER)

        assert status["completionState"] == "Failed"
        assert "artifacts" not in status
        assert conditions(status)["Completed"] == ("True", "Failed")


def test_a_vanished_run_completes_as_failed() -> None:
    status = vanished(RunView(run()), "r-1", LATER)

    assert status["completionState"] == "Failed"
    assert "no longer exists" in status["conditions"][0]["message"]


def test_merge_patch_removes_nulls_and_replaces_lists() -> None:
    assert merge_patch({"a": 1, "b": [1, 2], "c": {"x": 1, "y": 2}}, {"b": [2], "c": {"x": 1}}) == {
        "a": None,
        "b": [2],
        "c": {"y": None},
    }


def _conditions(*triples: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"type": t, "status": s, "reason": r, "message": f"{t} {r}"} for t, s, r in triples]


@pytest.mark.parametrize(
    ("name", "conditions", "expected"),
    [
        ("nothing yet", [], ("False", "Creating")),
        (
            "waiting for a dependency",
            _conditions(
                ("Synchronized", "Unknown", "Creating"), ("DependenciesResolved", "False", "PipelineNotFound")
            ),
            ("False", "PipelineNotFound"),
        ),
        (
            "refused",
            _conditions(
                ("Synchronized", "False", "Failed"), ("DependenciesResolved", "False", "InvalidParameter")
            ),
            ("False", "InvalidParameter"),
        ),
        (
            "KFP refused the create",
            _conditions(("Synchronized", "False", "Failed"), ("DependenciesResolved", "True", "Resolved")),
            ("False", "Failed"),
        ),
        (
            "KFP does not answer, after an earlier wait",
            _conditions(
                ("Synchronized", "Unknown", "KfpUnavailable"),
                ("DependenciesResolved", "False", "PipelineNotFound"),
            ),
            ("False", "KfpUnavailable"),
        ),
        (
            "running",
            _conditions(
                ("Synchronized", "True", "Succeeded"),
                ("DependenciesResolved", "True", "Resolved"),
                ("Completed", "False", "Running"),
            ),
            ("False", "Running"),
        ),
        (
            "succeeded",
            _conditions(("Synchronized", "True", "Succeeded"), ("Completed", "True", "Succeeded")),
            ("True", "Succeeded"),
        ),
        (
            "failed in KFP",
            _conditions(("Synchronized", "True", "Succeeded"), ("Completed", "True", "Failed")),
            ("False", "Failed"),
        ),
        (
            "being deleted after it succeeded",
            _conditions(("Synchronized", "Unknown", "Deleting"), ("Completed", "True", "Succeeded")),
            ("False", "Deleting"),
        ),
    ],
)
def test_ready_summarises_the_other_conditions(
    name: str, conditions: list[dict[str, str]], expected: tuple[str, str]
) -> None:
    summary = ready(conditions)

    assert (summary.type, summary.status, summary.reason) == ("Ready", *expected)
