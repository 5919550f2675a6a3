"""The Pipeline and Experiment CRDs on the real API server: the reference's Pipeline shape and the
compiled shapes are accepted, contradictory sources are refused with a message, and the model
reads every field the schema allows."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from reconcilers.api import GROUP, VERSION
from reconcilers.api.crds import experiment_crd, pipeline_crd
from reconcilers.api.experiment import EXPERIMENTS
from reconcilers.api.pipeline import PIPELINES, PipelineSpec


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def create(custom: Any, namespace: str, kind: str, spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, f"{kind.lower()}s", body)


ACCEPTED = [
    # The reference operator's v1alpha5 Pipeline, as teams have it.
    {
        "image": "kfp-quickstart:v1",
        "tfxComponents": "base_pipeline.create_components",
        "env": [{"name": "TRAINING_RUNS", "value": "100"}],
        "beamArgs": [{"name": "project", "value": "p"}, {"name": "project", "value": "q"}],
    },
    {"image": "ghcr.io/team/training:2.3.0", "pipelineFunction": "training.pipeline.training_pipeline"},
    {"compiled": {"pipelineSpec": "pipelineInfo: {name: x}", "version": "v1.2-rc_3"}},
    {"compiled": {"configMapKeyRef": {"name": "specs", "key": "x.yaml"}}},
]

REFUSED = [
    ({}, "set either image"),
    ({"image": "i:1", "tfxComponents": "a.b", "compiled": {"pipelineSpec": "x"}}, "set either image"),
    ({"image": "i:1"}, "exactly one of tfxComponents (TFX) and pipelineFunction"),
    ({"image": "i:1", "tfxComponents": "a.b", "pipelineFunction": "c.d"}, "exactly one of tfxComponents"),
    ({"image": "i:1", "pipelineFunction": "no_module"}, "pipelineFunction"),
    ({"compiled": {}}, "exactly one of compiled.pipelineSpec and"),
    ({"compiled": {"pipelineSpec": "x", "configMapKeyRef": {"name": "a", "key": "b"}}}, "exactly one of"),
    ({"compiled": {"pipelineSpec": "x", "version": "has space"}}, "compiled.version"),
    ({"image": "i:1", "pipelineFunction": "a.b", "env": [{"name": "A"}, {"name": "A"}]}, "Duplicate value"),
]


@pytest.mark.parametrize("spec", ACCEPTED, ids=range(len(ACCEPTED)))
def test_pipeline_shapes_are_accepted(custom, namespace, spec: dict[str, Any]) -> None:
    assert create(custom, namespace, "Pipeline", spec)["spec"] == spec


@pytest.mark.parametrize(("spec", "says"), REFUSED, ids=[s for _, s in REFUSED])
def test_contradictory_pipelines_are_refused(custom, namespace, spec: dict[str, Any], says: str) -> None:
    with pytest.raises(kubernetes.client.ApiException) as refused:
        create(custom, namespace, "Pipeline", spec)
    assert refused.value.status == 422
    assert says in refused.value.body


def test_names_are_limited_and_experiments_take_a_description(custom, namespace, kubectl) -> None:
    with pytest.raises(kubernetes.client.ApiException) as refused:
        create(custom, namespace, "Experiment", {"description": "x"}, name="e" * 64)
    assert "at most 63 characters" in refused.value.body
    create(custom, namespace, "Experiment", {"description": "Penguin runs"}, name="penguins")
    header = kubectl("get", "mlexp", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "PROVIDERID", "SYNCHRONIZATIONSTATE", "VERSION", "READY", "AGE"]


def test_the_pipeline_model_reads_every_field_of_the_schema() -> None:
    schema = pipeline_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(schema["properties"]) == {
        "image",
        "tfxComponents",
        "pipelineFunction",
        "env",
        "beamArgs",
        "compiled",
    }
    assert set(schema["properties"]["compiled"]["properties"]) == {
        "version",
        "pipelineSpec",
        "configMapKeyRef",
    }
    spec = PipelineSpec.from_dict(
        {
            "image": "i:1",
            "tfxComponents": "a.b",
            "pipelineFunction": "c.d",
            "env": [{"name": "A", "value": "1"}],
            "beamArgs": [{"name": "B", "value": "2"}],
            "compiled": {"version": "v", "pipelineSpec": "s", "configMapKeyRef": {"name": "n", "key": "k"}},
        }
    )
    assert (spec.image, spec.tfx_components, spec.pipeline_function) == ("i:1", "a.b", "c.d")
    assert (spec.env, spec.beam_args) == ((("A", "1"),), (("B", "2"),))
    assert (spec.compiled_version, spec.compiled_pipeline_spec) == ("v", "s")
    assert spec.compiled_config_map is not None and spec.compiled_config_map.key == "k"


def test_kinds_and_short_names() -> None:
    for crd, resource, short in (
        (pipeline_crd(), PIPELINES, "mlp"),
        (experiment_crd(), EXPERIMENTS, "mlexp"),
    ):
        assert crd["metadata"]["name"] == f"{resource.plural}.{GROUP}"
        assert crd["spec"]["names"]["kind"] == resource.kind
        assert crd["spec"]["names"]["shortNames"] == [short]
        assert crd["spec"]["names"]["categories"] == ["kfp"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
