"""What a Run's KFP run looks like, and how to find it again.

KFP has no idempotency key and run display names are not unique, so every run
the operator creates carries a marker derived from the Run's UID in its
description. Before any attempt but the first, the operator looks for a run with
that marker and adopts it if one exists: a crash between create and the status
write, a lost response or a retried create can therefore never produce a second run.
"""

from __future__ import annotations

from typing import Any

from reconcilers.api.run import RunView
from reconcilers.resolution import Resolved

# Everything the operator creates has this in its description; the UID follows it.
MARKER_PREFIX = "kfp-operator/run-uid="


def marker(run_uid: str) -> str:
    return f"{MARKER_PREFIX}{run_uid}"


def description(run: RunView) -> str:
    return f"Run {run.namespaced_name} created by kfp-operator. {marker(run.uid)}"


def run_uid_from_description(text: str | None) -> str | None:
    """The Run UID a KFP run was created for, if the operator created it."""
    if not text or MARKER_PREFIX not in text:
        return None
    return text.rpartition(MARKER_PREFIX)[2].split()[0] or None


def create_run_request(run: RunView, resolved: Resolved) -> dict[str, Any]:
    """The body of ``POST /apis/v2beta1/runs`` (proto field names, as the API expects)."""
    body: dict[str, Any] = {
        "display_name": run.namespaced_name,
        "description": description(run),
        "experiment_id": resolved.experiment_id,
        # Both ids, explicitly: without a version id the server picks "latest" itself, which
        # would bypass the version recorded in status.observedPipelineVersion.
        "pipeline_version_reference": {
            "pipeline_id": resolved.pipeline_id,
            "pipeline_version_id": resolved.version.version_id,
        },
    }
    if resolved.parameters:
        body["runtime_config"] = {"parameters": dict(resolved.parameters)}
    return body
