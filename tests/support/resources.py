"""Builders of Pipeline and Experiment objects as the API server returns them, for unit tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from reconcilers.api import API_VERSION, FINALIZER

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pipelines"
PENGUIN_SPEC = (EXAMPLES / "penguin_pipeline.yaml").read_text()
GENERATOR_SPEC = (EXAMPLES / "example_generator.yaml").read_text()


def pipeline(
    spec: dict[str, Any],
    *,
    name: str = "penguin",
    namespace: str = "ns",
    uid: str = "uid-penguin",
    status: dict[str, Any] | None = None,
    generation: int = 1,
    finalizer: bool = False,
    annotations: dict[str, str] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": generation,
            "resourceVersion": "7",
            "finalizers": [FINALIZER] if finalizer else [],
            "annotations": annotations or {},
            **metadata,
        },
        "spec": copy.deepcopy(spec),
        **({"status": status} if status is not None else {}),
    }


def compiled(text: str = PENGUIN_SPEC, version: str | None = None) -> dict[str, Any]:
    return {"compiled": {"pipelineSpec": text, **({"version": version} if version else {})}}


def from_image(image: str = "ghcr.io/team/pipelines:v1", function: str = "pipelines.penguin") -> dict:
    return {"image": image, "pipelineFunction": function, "env": [{"name": "RUNS", "value": "3"}]}


def experiment(
    description: str = "penguins",
    *,
    name: str = "penguin-experiment",
    namespace: str = "ns",
    uid: str = "uid-exp",
    status: dict[str, Any] | None = None,
    finalizer: bool = False,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
    **metadata: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": generation,
            "resourceVersion": "3",
            "finalizers": [FINALIZER] if finalizer else [],
            "annotations": annotations or {},
            **metadata,
        },
        "spec": {"description": description} if description is not None else {},
        **({"status": status} if status is not None else {}),
    }
