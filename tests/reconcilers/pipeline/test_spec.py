"""Checking a compiled pipeline before upload: what is accepted, what is refused and why."""

from __future__ import annotations

import json

import pytest
import yaml

from reconcilers.pipeline.spec import InvalidPipelineSpec, load_compiled
from tests.support.resources import GENERATOR_SPEC, PENGUIN_SPEC

PLATFORM = "---\nplatforms:\n  kubernetes:\n    deploymentSpec: {}\n"


def test_the_kfp_sdk_output_is_accepted_as_it_is() -> None:
    compiled = load_compiled(PENGUIN_SPEC)
    assert compiled.content == PENGUIN_SPEC
    assert compiled.name == "penguin-pipeline"
    assert len(compiled.digest) == 40


def test_the_digest_ignores_formatting_but_not_content() -> None:
    as_json = json.dumps(yaml.safe_load(PENGUIN_SPEC))
    assert load_compiled(as_json).digest == load_compiled(PENGUIN_SPEC).digest
    assert load_compiled(GENERATOR_SPEC).digest != load_compiled(PENGUIN_SPEC).digest
    assert load_compiled(PENGUIN_SPEC + PLATFORM).digest != load_compiled(PENGUIN_SPEC).digest


def test_a_tfx_pipeline_job_is_unwrapped() -> None:
    job = {"displayName": "x", "pipelineSpec": yaml.safe_load(PENGUIN_SPEC), "runtimeConfig": {}}
    compiled = load_compiled(json.dumps(job))
    assert json.loads(compiled.content)["pipelineInfo"]["name"] == "penguin-pipeline"
    assert compiled.digest == load_compiled(PENGUIN_SPEC).digest


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("a: [", "not YAML or JSON"),
        ("- 1\n- 2\n", "not a YAML mapping"),
        ("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n", "Argo Workflow"),
        ("pipelineInfo: {name: x}\n", "missing root, schemaVersion"),
        ("pipelineInfo: {}\nroot: {}\nschemaVersion: 2.1.0\n", "pipelineInfo.name"),
        (PENGUIN_SPEC + PLATFORM + "---\na: 1\n", "3 YAML documents"),
        (PENGUIN_SPEC + "---\n- 1\n", "platform spec) is not a mapping"),
        ("x" * (3 * 1024 * 1024 + 1), "larger than"),
    ],
)
def test_what_is_not_a_compiled_pipeline(text: str, says: str) -> None:
    with pytest.raises(InvalidPipelineSpec, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_compiled(text)
