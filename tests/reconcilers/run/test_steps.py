"""A Run's next step, and the submission decision, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from reconcilers.api import FINALIZER
from reconcilers.api.run import RunView
from reconcilers.clients import KfpError
from reconcilers.run.reconciler import has_next_step
from reconcilers.run.resolve import PipelineVersion, Rejected, Resolved, Waiting
from reconcilers.run.steps import (
    Create,
    Refuse,
    Step,
    Wait,
    decide_submission,
    may_have_kfp_run,
    next_step,
    refusal,
)
from tests.support.objects import run

DELETED = {"deletionTimestamp": "2026-01-02T03:00:00Z"}
SUBMITTED = {"providerId": "kfp:r-1", "synchronizationState": "Succeeded"}


@pytest.mark.parametrize(
    ("obj", "step"),
    [
        (run(), Step.SUBMIT),
        (run(status={"synchronizationState": "Creating", "observedGeneration": 1}), Step.SUBMIT),
        (run(status={"synchronizationState": "Failed", "observedGeneration": 1}), Step.NONE),
        (run(status={"synchronizationState": "Failed", "observedGeneration": 1}, generation=2), Step.SUBMIT),
        (run(status=SUBMITTED), Step.TRACK),
        (run(status={**SUBMITTED, "completionState": "Failed"}), Step.NONE),
        (run(status=SUBMITTED, finalizers=[FINALIZER], **DELETED), Step.FINALIZE),
        (run(finalizers=[FINALIZER], **DELETED), Step.FINALIZE),
        (run(status=SUBMITTED, **DELETED), Step.NONE),
        (
            run(status={**SUBMITTED, "completionState": "Succeeded"}, finalizers=[FINALIZER], **DELETED),
            Step.FINALIZE,
        ),
    ],
    ids=[
        "new: submit",
        "waiting: submit again",
        "refused for this generation: nothing",
        "refused for an older generation: submit",
        "submitted: track",
        "completed: nothing",
        "deleted with our finalizer: finalize",
        "deleted before it was recorded: finalize",
        "deleted without our finalizer: nothing",
        "completed and deleted: finalize (release)",
    ],
)
def test_next_step(obj: dict[str, Any], step: Step) -> None:
    assert next_step(RunView(obj)) == step
    # The run controller's event filter: only a Run with a step to take is queued.
    assert has_next_step(obj) is (step is not Step.NONE)


RESOLVED = Resolved("p", PipelineVersion("p", "v", "v1"), "e", "E", {}, {})
WAITING = Waiting("PipelineNotFound", "no pipeline", {}, waits_on_kfp=True)
REJECTED = Rejected("InvalidArtifactFilter", "bad filter")


@pytest.mark.parametrize(
    ("resolution", "decision"),
    [(RESOLVED, Create(RESOLVED)), (WAITING, Wait(WAITING)), (REJECTED, Refuse(REJECTED))],
    ids=["create", "wait", "refuse"],
)
def test_submission_decision(resolution: Any, decision: Any) -> None:
    assert decide_submission(resolution) == decision


@pytest.mark.parametrize(
    ("obj", "may"),
    [(run(), False), (run(finalizers=[FINALIZER]), True), (run(finalizers=["other"]), False)],
    ids=[
        "never attempted",
        "attempted: the finalizer is added before every create",
        "someone else's finalizer",
    ],
)
def test_only_a_run_with_the_finalizer_may_have_a_kfp_run(obj: dict[str, Any], may: bool) -> None:
    assert may_have_kfp_run(RunView(obj)) == may


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (400, True),
        (422, True),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (429, False),
        (500, False),
        (503, False),
        (None, False),
    ],
)
def test_a_failed_create_is_final_only_when_kfp_refused_the_request(status: int | None, final: bool) -> None:
    refused = refusal(KfpError("create_run", status, "HTTP x: no"))

    assert (refused is not None) == final
    if refused is not None:
        assert refused.reason == "SubmissionFailed"
        assert "no" in refused.message
