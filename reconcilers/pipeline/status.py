"""The desired status of a Pipeline, as pure functions.

``synchronizationState`` and ``version`` mean what they meant in the reference operator: the
version the spec describes, and whether it is in KFP (``Succeeded``), on its way (``Creating`` for
the first version, ``Updating`` for a later one), impossible as written (``Failed``) or being
removed (``Deleting``). ``Synchronized`` says the same with a reason; ``Ready`` is True exactly
when Runs can use ``status.version``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconcilers.api.pipeline import PipelineView
from reconcilers.conditions import FALSE, READY, SYNCHRONIZED, TRUE, UNKNOWN, Condition, next_status

CREATING, UPDATING, SUCCEEDED, FAILED, DELETING = "Creating", "Updating", "Succeeded", "Failed", "Deleting"
COMPILING = "Compiling"


def _progressing_state(pipeline: PipelineView) -> str:
    return UPDATING if pipeline.kfp_id else CREATING


def succeeded(
    pipeline: PipelineView, *, version: str, kfp_name: str, pipeline_id: str, provider: str, now: datetime
) -> dict[str, Any]:
    message = f"version {version} is in KFP as pipeline {kfp_name}"
    return next_status(
        pipeline,
        now,
        [Condition(SYNCHRONIZED, TRUE, SUCCEEDED, message), Condition(READY, TRUE, SUCCEEDED, message)],
        synchronizationState=SUCCEEDED,
        version=version,
        kfpName=kfp_name,
        providerId=f"{provider}:{pipeline_id}",
    )


def progressing(
    pipeline: PipelineView, *, version: str | None, kfp_name: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """On its way (compiling) or waiting for something (a ConfigMap): Runs wait meanwhile."""
    return next_status(
        pipeline,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, reason, message), Condition(READY, FALSE, reason, message)],
        synchronizationState=_progressing_state(pipeline),
        version=version,
        kfpName=kfp_name,
    )


def failed(
    pipeline: PipelineView, *, version: str | None, kfp_name: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """Cannot be synchronized as written; earlier versions stay in KFP."""
    return next_status(
        pipeline,
        now,
        [Condition(SYNCHRONIZED, FALSE, reason, message), Condition(READY, FALSE, reason, message)],
        synchronizationState=FAILED,
        version=version,
        kfpName=kfp_name,
    )


def deleting(pipeline: PipelineView, *, message: str, now: datetime) -> dict[str, Any]:
    return next_status(
        pipeline,
        now,
        [Condition(SYNCHRONIZED, UNKNOWN, DELETING, message), Condition(READY, FALSE, DELETING, message)],
        synchronizationState=DELETING,
    )
