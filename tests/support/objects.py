"""Builders of Run and RunConfiguration objects as the API server returns them, for unit tests."""

from __future__ import annotations

import copy
from typing import Any

from reconcilers.api import API_VERSION

SEED_SPEC: dict[str, Any] = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [
        {"name": "TRAINING_RUNS", "value": "100"},
        {
            "name": "EXAMPLES",
            "valueFrom": {
                "runConfigurationRef": {
                    "name": "penguin-pipeline-example-generator-runconfiguration",
                    "outputArtifact": "examples",
                }
            },
        },
    ],
    "artifacts": [{"name": "serving-model", "path": "Pusher:pushed_model:0[pushed == 1]"}],
}


def run(
    *,
    name: str = "penguin-run-x",
    namespace: str = "ns",
    uid: str = "0b1c2d3e-0000-4000-8000-000000000001",
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
    **metadata: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": generation,
            "resourceVersion": "1",
            "labels": labels or {},
            "annotations": annotations or {},
            **metadata,
        },
        "spec": copy.deepcopy(spec if spec is not None else SEED_SPEC),
        **({"status": status} if status is not None else {}),
    }


def run_configuration(name: str, *, succeeded: dict[str, Any] | None = None) -> dict[str, Any]:
    status = {"latestRuns": {"succeeded": succeeded}} if succeeded is not None else {}
    return {
        "apiVersion": API_VERSION,
        "kind": "RunConfiguration",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1},
        "spec": {"run": {"pipeline": "example-generator"}},
        "status": status,
    }
