"""The Run CRD against the real API server: what users can apply, and what they are told when they can't."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

GROUP, VERSION, PLURAL = "pipelines.kubeflow.org", "v1alpha5", "runs"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEED = yaml.safe_load((PROJECT_ROOT / "examples" / "run.yaml").read_text())

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def create(
    custom: kubernetes.client.CustomObjectsApi, namespace: str, body: dict[str, Any]
) -> dict[str, Any]:
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def run_with(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED)
    body["spec"].update(spec)
    return body


def rejection(custom: kubernetes.client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(kubernetes.client.ApiException) as raised:
        create(custom, namespace, body)
    assert raised.value.status == 422, raised.value.body
    return json.loads(raised.value.body)["message"]


def test_crds_are_generated_from_their_source() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "hack" / "gen_crds.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_seed_example_is_accepted_and_reads_back_unchanged(custom, namespace) -> None:
    created = create(custom, namespace, SEED)

    assert created["metadata"]["name"].startswith("penguin-pipeline-run-")
    read = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, created["metadata"]["name"])
    assert read["spec"] == SEED["spec"]


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        (
            {
                "name": "EXAMPLES",
                "value": "x",
                "valueFrom": {"runConfigurationRef": {"name": "rc", "outputArtifact": "examples"}},
            },
            "only one of value or valueFrom can be set",
        ),
        ({"name": "EXAMPLES"}, "one of value or valueFrom must be set"),
        (
            {"name": "EXAMPLES", "valueFrom": {"runConfigurationRef": {"name": "rc"}}},
            "outputArtifact: Required",
        ),
    ],
    ids=["value-and-valueFrom", "neither", "incomplete-reference"],
)
def test_invalid_parameter_is_rejected_with_a_clear_message(custom, namespace, parameter, message) -> None:
    body = run_with(runtimeParameters=[parameter])

    assert message in rejection(custom, namespace, body)


def test_duplicate_parameter_names_are_rejected(custom, namespace) -> None:
    body = run_with(runtimeParameters=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}])

    assert 'spec.runtimeParameters[1]: Duplicate value: {"name":"A"}' in rejection(custom, namespace, body)


def test_duplicate_artifact_names_are_rejected(custom, namespace) -> None:
    body = run_with(artifacts=[{"name": "m", "path": "A:b"}, {"name": "m", "path": "C:d"}])

    assert "spec.artifacts[1]: Duplicate value" in rejection(custom, namespace, body)


@pytest.mark.parametrize(
    "path",
    [
        "Pusher",  # no output
        ":pushed_model",  # no component
        "Pusher:",  # empty output
        "Pusher:pushed_model:x",  # index not a number
        "Pusher:pushed_model:0:1",  # too many segments
        "Pusher:pushed_model[pushed == 1",  # unclosed filter
        "Pusher:pushed_model[]",  # empty filter
        "Pusher:pushed_model[a[0] == 1]",  # brackets inside the filter
        "Pusher[pushed == 1]",  # filter without an output
    ],
)
def test_malformed_artifact_path_is_rejected(custom, namespace, path) -> None:
    body = run_with(artifacts=[{"name": "model", "path": path}])

    assert "spec.artifacts[0].path: Invalid value" in rejection(custom, namespace, body)


@pytest.mark.parametrize(
    "pipeline", ["penguin pipeline", "penguin:v1:extra", "penguin:", ":v1", "penguin/pipeline", ""]
)
def test_invalid_pipeline_is_rejected(custom, namespace, pipeline) -> None:
    body = run_with(pipeline=pipeline)

    assert "spec.pipeline: Invalid value" in rejection(custom, namespace, body)


@pytest.mark.parametrize(
    "spec",
    [
        {"artifacts": [{"name": "m", "path": "Pusher:pushed_model"}]},  # index and filter omitted
        {"artifacts": [{"name": "m", "path": "Pusher:pushed_model:"}]},  # empty index means 0
        {"artifacts": [{"name": "m", "path": "Pusher:pushed_model[pushed == 1]"}]},  # index omitted
        {"artifacts": [{"name": "m", "path": "Pusher:pushed_model:3"}]},  # filter omitted
        {"pipeline": "penguin-pipeline"},  # no version: the latest is used
        {"pipeline": "penguin_pipeline:v1.2-rc_3"},
        {"runtimeParameters": [{"name": "EMPTY", "value": ""}]},  # an empty value is a value
        {"experimentName": None, "runtimeParameters": None, "artifacts": None},  # only a pipeline
    ],
)
def test_valid_boundary_cases_are_accepted(custom, namespace, spec) -> None:
    body = run_with(**spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}

    created = create(custom, namespace, body)

    assert created["spec"] == body["spec"]


def test_spec_is_immutable(custom, namespace) -> None:
    name = create(custom, namespace, SEED)["metadata"]["name"]

    with pytest.raises(kubernetes.client.ApiException) as raised:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": {"experimentName": "other"}}
        )

    assert raised.value.status == 422
    assert "spec is immutable" in raised.value.body


def test_status_update_does_not_change_spec(custom, namespace) -> None:
    name = create(custom, namespace, SEED)["metadata"]["name"]

    patched = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"spec": {"experimentName": "other"}, "status": {"providerId": "kfp:123"}},
    )

    assert patched["status"]["providerId"] == "kfp:123"
    assert patched["spec"] == SEED["spec"]


def test_kubectl_get_shows_the_printer_columns(custom, namespace, kubectl: Kubectl) -> None:
    name = create(custom, namespace, SEED)["metadata"]["name"]
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {
            "status": {
                "providerId": "kfp:3f2a",
                "synchronizationState": "Succeeded",
                "version": "abc123",
                "completionState": "Succeeded",
            }
        },
    )

    for resource in ("runs", "mlr"):
        lines = kubectl("get", resource, "-n", namespace).stdout.splitlines()
        assert lines[0].split() == [
            "NAME",
            "PROVIDERID",
            "SYNCHRONIZATIONSTATE",
            "VERSION",
            "COMPLETIONSTATE",
            "AGE",
        ], resource
        assert lines[1].split()[:5] == [name, "kfp:3f2a", "Succeeded", "abc123", "Succeeded"], resource
    assert f"run.pipelines.kubeflow.org/{name}" in kubectl("get", "kfp", "-n", namespace).stdout


def test_kubectl_explain_describes_the_fields(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "run.spec.runtimeParameters").stdout

    assert "Runtime parameters for the pipeline run" in explained
    assert "valueFrom" in explained
    assert "Resolves the value from another resource" in explained


def test_every_schema_field_has_a_description() -> None:
    def undocumented(schema: dict[str, Any], path: str) -> list[str]:
        missing = [] if "description" in schema or path.endswith(".metadata") else [path]
        for name, child in schema.get("properties", {}).items():
            missing += undocumented(child, f"{path}.{name}")
        if "items" in schema:
            missing += undocumented(schema["items"], f"{path}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            missing += undocumented(schema["additionalProperties"], f"{path}{{}}")
        return missing

    for crd_file in sorted((PROJECT_ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(crd_file.read_text())
        for version in crd["spec"]["versions"]:
            assert undocumented(version["schema"]["openAPIV3Schema"], crd["spec"]["names"]["kind"]) == []
