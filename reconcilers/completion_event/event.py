"""The run-completion event: a CloudEvents 1.0 structured JSON document.

The envelope is eight fixed fields, so it is built here rather than through the
CloudEvents SDK: the JSON is what every sink sends, and a test pins it field by
field. The id is derived from the Run's UID and the KFP run id, so a redelivery
after a crash or a retry carries the same id and consumers can de-duplicate.
"""

from __future__ import annotations

import uuid
from typing import Any

from reconcilers.api.run import RunView

EVENT_TYPE = "org.kubeflow.pipelines.run-completion"
SPEC_VERSION = "1.0"
# A fixed namespace for uuid5, so ids are stable across operator versions and replicas.
_ID_NAMESPACE = uuid.UUID("6f0e4d2c-9a61-4a3e-8a9e-2f7d0c5b1e43")


def event_id(run_uid: str, kfp_run_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{run_uid}/{kfp_run_id}"))


def completion_event(run: RunView, provider: str) -> dict[str, Any]:
    """The event for a completed Run (``status.completionState`` set)."""
    kfp_run_id = run.kfp_run_id or ""
    data: dict[str, Any] = {
        "status": "succeeded" if run.completion_state == "Succeeded" else "failed",
        "pipelineName": f"{run.namespace}/{run.spec.pipeline.name}",
        "runName": run.namespaced_name,
        "runId": kfp_run_id,
        "artifacts": [a.to_json() for a in run.artifacts()],
        "provider": provider,
    }
    run_configuration = run.owning_run_configuration()
    if run_configuration:
        data["runConfigurationName"] = f"{run.namespace}/{run_configuration}"
    if run.status.get("startedAt"):
        data["runStartTime"] = run.status["startedAt"]
    if run.status.get("finishedAt"):
        data["runEndTime"] = run.status["finishedAt"]
    return {
        "specversion": SPEC_VERSION,
        "id": event_id(run.uid, kfp_run_id),
        "source": provider,
        "type": EVENT_TYPE,
        "time": run.status.get("finishedAt") or run.status.get("markedCompletedAt"),
        "datacontenttype": "application/json",
        "data": data,
    }
