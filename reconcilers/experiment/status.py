"""The desired status of an Experiment, as pure functions (``Synchronized`` and ``Ready``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconcilers.api.experiment import ExperimentView
from reconcilers.conditions import FALSE, READY, SYNCHRONIZED, TRUE, UNKNOWN, Condition, next_status

CREATING, SUCCEEDED, FAILED, DELETING = "Creating", "Succeeded", "Failed", "Deleting"
DESCRIPTION_NOT_UPDATED = "DescriptionNotUpdated"


def succeeded(
    experiment: ExperimentView,
    *,
    version: str,
    kfp_name: str,
    experiment_id: str,
    provider: str,
    now: datetime,
    reason: str = SUCCEEDED,
    message: str = "",
) -> dict[str, Any]:
    message = message or f"KFP experiment {kfp_name} exists"
    return next_status(
        experiment,
        now,
        [Condition(SYNCHRONIZED, TRUE, reason, message), Condition(READY, TRUE, SUCCEEDED, message)],
        synchronizationState=SUCCEEDED,
        version=version,
        kfpName=kfp_name,
        providerId=f"{provider}:{experiment_id}",
    )


def failed(
    experiment: ExperimentView, *, version: str, kfp_name: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    return next_status(
        experiment,
        now,
        [Condition(SYNCHRONIZED, FALSE, reason, message), Condition(READY, FALSE, reason, message)],
        synchronizationState=FAILED,
        version=version,
        kfpName=kfp_name,
        providerId=None,
    )


def waiting_on_kfp(experiment: ExperimentView, *, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """A KFP call failed and is retried. ``Ready`` and the KFP experiment it names stay as they
    were: one that exists still serves the Runs that name it."""
    return next_status(
        experiment,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, reason, message)],
        synchronizationState=experiment.status.get("synchronizationState") or CREATING,
    )


def deleting(experiment: ExperimentView, *, message: str, now: datetime) -> dict[str, Any]:
    return next_status(
        experiment,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, DELETING, message), Condition(READY, FALSE, DELETING, message)],
        synchronizationState=DELETING,
    )
