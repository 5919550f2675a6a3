"""The desired status of a Run at each stage of its life, as pure functions.

Each function takes the Run as it is and what was observed, and returns the
whole desired ``status``. The reconciler writes the difference (a JSON merge
patch) only when there is one, so a converged Run costs no API writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reconcilers.api.run import Artifact, RunView, run_version
from reconcilers.conditions import (
    COMPLETED,
    DEPENDENCIES_RESOLVED,
    FALSE,
    READY,
    SYNCHRONIZED,
    TRUE,
    UNKNOWN,
    Condition,
    condition_of,
    next_status,
)
from reconcilers.run.resolve import Rejected, Resolved, Waiting
from reconcilers.run.tracking import KfpRunObservation
from reconcilers.timestamps import format_time

# synchronizationState values (the reference operator's): Succeeded means *submitted*.
CREATING, SUBMITTED, FAILED, DELETING = "Creating", "Succeeded", "Failed", "Deleting"
# The Completed reason of a Run whose KFP run succeeded while ML Metadata cannot be read.
METADATA_UNAVAILABLE = "MetadataUnavailable"


def _with(run: RunView, now: datetime, conditions: Sequence[Condition], **fields: Any) -> dict[str, Any]:
    return next_status(run, now, conditions, summary=ready, **fields)


def ready(conditions: Sequence[Mapping[str, Any]]) -> Condition:
    """The Ready summary of a Run: True once it completed successfully; otherwise False with the
    reason of whatever holds it (being deleted, failed, waiting, or still running in KFP)."""
    synchronized = condition_of(conditions, SYNCHRONIZED)
    dependencies = condition_of(conditions, DEPENDENCIES_RESOLVED)
    completed = condition_of(conditions, COMPLETED)
    if synchronized is not None and synchronized.reason == DELETING:
        return Condition(READY, FALSE, DELETING, synchronized.message)
    if completed is not None and completed.status == TRUE:
        outcome = TRUE if completed.reason == "Succeeded" else FALSE
        return Condition(READY, outcome, completed.reason, completed.message)
    if synchronized is not None and synchronized.status == FALSE:  # failed: say the specific reason
        cause = dependencies if dependencies is not None and dependencies.status == FALSE else synchronized
        return Condition(READY, FALSE, cause.reason, cause.message)
    if synchronized is not None and synchronized.status == UNKNOWN and synchronized.reason != CREATING:
        return Condition(READY, FALSE, synchronized.reason, synchronized.message)  # KFP does not answer
    for holding in (dependencies, synchronized, completed):
        if holding is not None and holding.status != TRUE:
            return Condition(READY, FALSE, holding.reason, holding.message)
    return Condition(READY, FALSE, CREATING, "not submitted yet")


def kfp_unavailable(run: RunView, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """KFP did not answer, or answered with an error that may pass, before the run was submitted."""
    return _with(
        run,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, reason, message)],
        synchronizationState=run.status.get("synchronizationState") or CREATING,
    )


def waiting(run: RunView, result: Waiting, now: datetime) -> dict[str, Any]:
    return _with(
        run,
        now,
        [
            Condition(SYNCHRONIZED, UNKNOWN, CREATING, f"waiting for dependencies: {result.message}"),
            Condition(DEPENDENCIES_RESOLVED, FALSE, result.reason, result.message),
        ],
        synchronizationState=CREATING,
        dependencies={"runConfigurations": dict(result.dependencies)} if result.dependencies else None,
    )


def rejected(run: RunView, result: Rejected, now: datetime) -> dict[str, Any]:
    return _with(
        run,
        now,
        [
            Condition(SYNCHRONIZED, FALSE, FAILED, result.message),
            Condition(DEPENDENCIES_RESOLVED, FALSE, result.reason, result.message),
        ],
        synchronizationState=FAILED,
        dependencies={"runConfigurations": dict(result.dependencies)} if result.dependencies else None,
    )


def submission_failed(run: RunView, resolved: Resolved, message: str, now: datetime) -> dict[str, Any]:
    """KFP refused the run for a reason the user must fix (a 4xx answer)."""
    return _with(
        run,
        now,
        [
            Condition(SYNCHRONIZED, FALSE, FAILED, f"KFP rejected the run: {message}"),
            Condition(DEPENDENCIES_RESOLVED, TRUE, "Resolved", _resolved_message(resolved)),
        ],
        synchronizationState=FAILED,
        observedPipelineVersion=resolved.version.name,
        dependencies=_dependencies(resolved),
    )


def submitted(
    run: RunView, resolved: Resolved, provider: str, observation: KfpRunObservation, now: datetime
) -> dict[str, Any]:
    """The run exists in KFP: record it and freeze the resolution."""
    return _with(
        run,
        now,
        [
            Condition(SYNCHRONIZED, TRUE, SUBMITTED, f"submitted to KFP as run {observation.run_id}"),
            Condition(DEPENDENCIES_RESOLVED, TRUE, "Resolved", _resolved_message(resolved)),
            _progress_condition(observation),
        ],
        providerId=f"{provider}:{observation.run_id}",
        synchronizationState=SUBMITTED,
        version=run_version(run.spec, resolved.version.name),
        observedPipelineVersion=resolved.version.name,
        dependencies=_dependencies(resolved),
        startedAt=_time(observation.created_at),
    )


def progressing(run: RunView, observation: KfpRunObservation, now: datetime) -> dict[str, Any]:
    """The KFP run is pending or running."""
    return _with(
        run,
        now,
        [_progress_condition(observation)],
        startedAt=run.status.get("startedAt") or _time(observation.created_at),
    )


def completed(
    run: RunView, observation: KfpRunObservation, artifacts: Sequence[Artifact], now: datetime
) -> dict[str, Any]:
    """The KFP run finished: record the outcome and, for a success, the resolved artifacts."""
    outcome = "Succeeded" if observation.succeeded else "Failed"
    message = (
        f"KFP run {observation.run_id} succeeded"
        if observation.succeeded
        else f"KFP run {observation.run_id} ended {observation.state}"
    )
    return _with(
        run,
        now,
        [Condition(COMPLETED, TRUE, outcome, message)],
        completionState=outcome,
        markedCompletedAt=run.status.get("markedCompletedAt") or format_time(now),
        startedAt=run.status.get("startedAt") or _time(observation.created_at),
        finishedAt=_time(observation.finished_at) or format_time(now),
        artifacts=[a.to_json() for a in artifacts] if observation.succeeded else None,
    )


def waiting_on_metadata(run: RunView, message: str, now: datetime) -> dict[str, Any]:
    """The KFP run succeeded, but ML Metadata cannot be read for its artifacts yet."""
    return _with(run, now, [Condition(COMPLETED, FALSE, METADATA_UNAVAILABLE, message)])


def vanished(run: RunView, run_id: str, now: datetime) -> dict[str, Any]:
    """KFP no longer knows the run (deleted there, or garbage-collected) before it was seen finishing."""
    return _with(
        run,
        now,
        [Condition(COMPLETED, TRUE, "Failed", f"KFP run {run_id} no longer exists in KFP")],
        completionState="Failed",
        markedCompletedAt=run.status.get("markedCompletedAt") or format_time(now),
        finishedAt=run.status.get("finishedAt") or format_time(now),
    )


def deleting(run: RunView, what: str, now: datetime) -> dict[str, Any]:
    """The Run is being deleted and its finalizer holds it until ``what`` is done."""
    return _with(
        run,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, DELETING, f"deleting: {what}")],
        synchronizationState=DELETING,
    )


def merge_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``current`` into ``desired``; empty when equal."""
    patch: dict[str, Any] = {}
    for key in current.keys() - desired.keys():
        patch[key] = None
    for key, value in desired.items():
        old = current.get(key)
        if old == value:
            continue
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            patch[key] = merge_patch(old, value)
        else:
            patch[key] = value
    return patch


def _progress_condition(observation: KfpRunObservation) -> Condition:
    if observation.state == "PENDING" or observation.state == "RUNTIME_STATE_UNSPECIFIED":
        return Condition(COMPLETED, FALSE, "Pending", f"KFP run {observation.run_id} is pending")
    return Condition(
        COMPLETED, FALSE, "Running", f"KFP run {observation.run_id} is {observation.state.lower()}"
    )


def _dependencies(resolved: Resolved) -> dict[str, Any] | None:
    return {"runConfigurations": dict(resolved.dependencies)} if resolved.dependencies else None


def _resolved_message(resolved: Resolved) -> str:
    return (
        f"pipeline version {resolved.version.name}, experiment {resolved.experiment_name}, "
        f"{len(resolved.parameters)} parameter(s)"
    )


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None
