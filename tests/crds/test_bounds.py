"""Bounded input: every string, list and map a user writes into a spec has a limit in the CRD, so no
object can make the operator hold more than the API server's own request limit allows."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from reconcilers.api.crds import MAX_LIST_ITEMS, MAX_VALUE_LENGTH, definitions

GROUP, VERSION = "pipelines.kubeflow.org", "v1alpha5"
SEED = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "run.yaml").read_text())


def unbounded(node: dict[str, Any], path: str) -> Iterator[str]:
    """Paths in a schema where a user could write without limit."""
    kind = node.get("type")
    if (
        kind == "string"
        and "maxLength" not in node
        and "enum" not in node
        and node.get("format") != "date-time"
    ):
        yield path
    if kind == "array":
        if "maxItems" not in node:
            yield f"{path}[]"
        yield from unbounded(node["items"], f"{path}[]")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        yield f"{path} (any fields)"
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        if "maxProperties" not in node:
            yield f"{path}{{}}"
        yield from unbounded(additional, f"{path}{{*}}")
    for name, child in (node.get("properties") or {}).items():
        yield from unbounded(child, f"{path}.{name}")
    for combinator in ("oneOf", "anyOf", "allOf"):
        for index, alternative in enumerate(node.get(combinator) or ()):
            yield from unbounded(alternative, f"{path}<{combinator}[{index}]>")


@pytest.mark.parametrize("definition", definitions(), ids=lambda d: d["spec"]["names"]["kind"])
def test_every_string_list_and_map_of_a_spec_is_bounded(definition: dict[str, Any]) -> None:
    for version in definition["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert list(unbounded(spec, "spec")) == []


def test_the_walk_finds_an_unbounded_field() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "array", "items": {"type": "string", "maxLength": 1}},
            "c": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1}},
        },
    }
    assert list(unbounded(schema, "spec")) == ["spec.a", "spec.b[]", "spec.c{}"]


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def run_with_parameters(count: int, value_length: int) -> dict[str, Any]:
    body = copy.deepcopy(SEED)
    body["metadata"] = {"generateName": "big-"}
    body["spec"]["runtimeParameters"] = [{"name": f"P{i}", "value": "x" * value_length} for i in range(count)]
    return body


def refusal(custom: kubernetes.client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(kubernetes.client.ApiException) as raised:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "runs", body)
    assert raised.value.status == 422, raised.value.body
    return str(json.loads(raised.value.body)["message"])


def test_the_api_server_refuses_more_parameters_or_longer_values_than_the_crd_allows(
    custom, namespace
) -> None:
    assert "Too many: 129: must have at most 128 items" in refusal(
        custom, namespace, run_with_parameters(MAX_LIST_ITEMS + 1, 1)
    )
    assert f"may not be more than {MAX_VALUE_LENGTH} bytes" in refusal(
        custom, namespace, run_with_parameters(1, MAX_VALUE_LENGTH + 1)
    )
