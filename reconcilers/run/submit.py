"""The request that creates a Run's KFP run, and what a KFP run found by its marker used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconcilers.api.run import RunSpec, RunView
from reconcilers.run.resolve import PipelineVersion, Resolved
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


def what_it_used(
    spec: RunSpec,
    kfp_run: Mapping[str, Any],
    version: PipelineVersion | None,
    experiment_name: str | None,
) -> Resolved:
    """What a KFP run created for a Run was submitted with: the inverse of :func:`create_run_request`.

    Recorded when the Run adopts a run an earlier attempt created, rather than what resolving
    again would give now (a newer pipeline version, newer artifacts of a RunConfiguration).
    ``version`` and ``experiment_name`` are KFP's answers for the run's ids, if it still knows them.
    """
    reference = kfp_run.get("pipeline_version_reference") or {}
    pipeline_id = reference.get("pipeline_id", "")
    version_id = reference.get("pipeline_version_id", "")
    parameters: Mapping[str, Any] = (kfp_run.get("runtime_config") or {}).get("parameters") or {}
    dependencies: dict[str, dict[str, Any]] = {}
    for parameter in spec.runtime_parameters:
        ref = parameter.value_from
        if ref is None or parameter.name not in parameters:
            continue
        used = {"name": ref.output_artifact, "location": str(parameters[parameter.name])}
        dependencies.setdefault(ref.name, {"artifacts": []})["artifacts"].append(used)
    experiment_id = kfp_run.get("experiment_id", "")
    return Resolved(
        pipeline_id=pipeline_id,
        version=version or PipelineVersion(pipeline_id, version_id, version_id),
        experiment_id=experiment_id,
        experiment_name=experiment_name or experiment_id,
        parameters=dict(parameters),
        dependencies=dependencies,
    )
