"""The desired status of a RunConfiguration, as pure functions.

``status.latestRuns`` is not written here: the latest-run controller owns it. A merge patch of
the difference leaves it alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reconcilers.api.runconfiguration import RunConfigurationView
from reconcilers.conditions import (
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
from reconcilers.run.resolve import Resolved, Waiting
from reconcilers.timestamps import format_time

# synchronizationState: Succeeded once spec.run resolves and its triggers are active.
CREATING, UPDATING, SUCCEEDED, FAILED = "Creating", "Updating", "Succeeded", "Failed"


def synchronized(
    rc: RunConfigurationView,
    *,
    provider: str,
    resolved: Resolved,
    dependencies: Mapping[str, Any],
    triggered: Mapping[str, Any],
    last_schedule: datetime | None,
    next_schedule: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    message = f"pipeline version {resolved.version.name}, experiment {resolved.experiment_name}"
    if rc.schedules:
        message += "; next tick " + (format_time(next_schedule) if next_schedule else "none")
    return _with(
        rc,
        now,
        [
            Condition(SYNCHRONIZED, TRUE, SUCCEEDED, message),
            Condition(DEPENDENCIES_RESOLVED, TRUE, "Resolved", message),
        ],
        synchronizationState=SUCCEEDED,
        provider=provider,
        observedPipelineVersion=resolved.version.name,
        dependencies={"runConfigurations": dict(dependencies)} if dependencies else None,
        lastScheduleTime=format_time(last_schedule) if last_schedule else rc.status.get("lastScheduleTime"),
        nextScheduleTime=format_time(next_schedule) if next_schedule else None,
        **triggered,
    )


def waiting(rc: RunConfigurationView, *, provider: str, waiting: Waiting, now: datetime) -> dict[str, Any]:
    """spec.run cannot be resolved yet: no Runs are created, and the reason says what is missing."""
    return _with(
        rc,
        now,
        [
            Condition(SYNCHRONIZED, UNKNOWN, waiting.reason, f"waiting: {waiting.message}"),
            Condition(DEPENDENCIES_RESOLVED, FALSE, waiting.reason, waiting.message),
        ],
        synchronizationState=UPDATING if rc.status.get("observedPipelineVersion") else CREATING,
        provider=provider,
        dependencies={"runConfigurations": dict(waiting.dependencies)} if waiting.dependencies else None,
        nextScheduleTime=None,
    )


def waiting_on_kfp(
    rc: RunConfigurationView, *, provider: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """spec.run could not be resolved because a KFP call failed; it is retried with backoff. The
    rest of the status (what was triggered, the next tick) stays as it was."""
    return _with(
        rc,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, reason, message)],
        synchronizationState=UPDATING if rc.status.get("observedPipelineVersion") else CREATING,
        provider=provider,
    )


def failed(
    rc: RunConfigurationView, *, provider: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """The RunConfiguration cannot work as written (a bad schedule, a trigger cycle, ...)."""
    return _with(
        rc,
        now,
        [Condition(SYNCHRONIZED, FALSE, reason, message)],
        synchronizationState=FAILED,
        provider=provider,
        nextScheduleTime=None,
    )


def _with(
    rc: RunConfigurationView, now: datetime, conditions: Sequence[Condition], **fields: Any
) -> dict[str, Any]:
    return next_status(rc, now, conditions, summary=ready, **fields)


def ready(conditions: Sequence[Mapping[str, Any]]) -> Condition:
    """The Ready summary of a RunConfiguration: True while spec.run resolves and its triggers are
    active; otherwise False with the reason it waits or fails."""
    synchronized = condition_of(conditions, SYNCHRONIZED)
    if synchronized is None:
        return Condition(READY, FALSE, CREATING, "not resolved yet")
    return Condition(
        READY,
        synchronized.status if synchronized.status == TRUE else FALSE,
        synchronized.reason,
        synchronized.message,
    )
