"""The request that creates a Run's KFP run."""

from __future__ import annotations

from typing import Any

from reconcilers.api.run import RunView
from reconcilers.run.resolve import Resolved
from reconcilers.run.tracking import description


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
