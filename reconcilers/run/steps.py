"""What a Run needs next, and how its submission is decided: pure functions, tested by tables.

:func:`next_step` reads only the Run. :func:`may_have_kfp_run` says whether an earlier attempt
may have created a KFP run, which the Run then adopts before anything else;
:func:`decide_submission` turns what resolution found into create, wait or refuse;
:func:`refusal` says whether a failed create is final. The reconciler does the I/O around them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from reconcilers.api.run import RunView
from reconcilers.clients import KfpError
from reconcilers.run.resolve import Rejected, Resolution, Resolved, Waiting
from reconcilers.run.status import FAILED


class Step(enum.Enum):
    NONE = "none"  # completed, refused for good, or deleted without our finalizer
    FINALIZE = "finalize"  # being deleted: stop an active KFP run, then release the Run
    SUBMIT = "submit"  # not submitted yet: resolve, then create or adopt its KFP run
    TRACK = "track"  # submitted and not completed: follow its KFP run


def next_step(run: RunView) -> Step:
    if run.is_deleting:
        return Step.FINALIZE if run.has_finalizer else Step.NONE
    if run.provider_id is None:
        return Step.NONE if is_refused(run) else Step.SUBMIT
    if not run.is_completed:
        return Step.TRACK
    return Step.NONE


def is_refused(run: RunView) -> bool:
    """Refused for good and already reported for this generation (the spec cannot change)."""
    return (
        run.status.get("synchronizationState") == FAILED
        and run.status.get("observedGeneration") == run.generation
    )


def may_have_kfp_run(run: RunView) -> bool:
    """Whether a KFP run may exist for this unsubmitted Run, so it must be looked for first.

    The finalizer is added, conditionally on the version read, before every create: a Run
    without it has never had a create attempted, in any process.
    """
    return run.has_finalizer


@dataclass(frozen=True)
class Create:
    resolved: Resolved


@dataclass(frozen=True)
class Wait:
    waiting: Waiting


@dataclass(frozen=True)
class Refuse:
    """The Run can never be submitted as written; ``rejected`` says why."""

    rejected: Rejected


Submission = Create | Wait | Refuse


def decide_submission(resolution: Resolution) -> Submission:
    """What to do about a Run for which no KFP run exists."""
    match resolution:
        case Waiting():
            return Wait(resolution)
        case Rejected():
            return Refuse(resolution)
        case Resolved():
            return Create(resolution)


SUBMISSION_FAILED = "SubmissionFailed"


def refusal(error: KfpError) -> Rejected | None:
    """Whether KFP refused the run for good (its parameters, or what it names), or the create
    may be retried (None): a Run never fails for good because of KFP's other answers."""
    if not error.is_refusal:
        return None  # no answer, a server error, or not the run's fault: look for it next time
    return Rejected(SUBMISSION_FAILED, f"KFP rejected the run: {error.message}")
