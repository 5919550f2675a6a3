"""The emulator's JSON against the official v2beta1 swagger, for the calls an operator makes.

Definitions are converted to JSON Schema strictly: an object that lists its properties
allows no others, int64 values must be strings of digits and timestamps whole-second
RFC 3339 in UTC. The one documented difference is healthz, whose plain handler also
answers ``commit_sha`` and ``tag_name`` (docs/emulator.md §12).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kfp_devstack.emulator import Scenario, Task
from kfp_devstack.waiting import wait_until
from tests.emulator.helpers import PENGUIN_PARAMETERS, raw_call, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract

# The official specification (kubeflow/pipelines, Apache 2.0), kept beside the tests.
SWAGGER = Path(__file__).resolve().parent / "data" / "kfp_api_v2beta1.swagger.json"

TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
INT64 = r"^-?\d+$"


def _convert(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    schema: dict[str, Any] = {}
    kind = node.get("type")
    if kind:
        schema["type"] = kind
    if "enum" in node:
        schema["enum"] = node["enum"]
    if kind == "string" and node.get("format") == "date-time":
        schema["pattern"] = TIMESTAMP
    if kind == "string" and node.get("format") in ("int64", "uint64"):
        schema["pattern"] = INT64
    if kind == "array":
        schema["items"] = _convert(node.get("items", {}))
    if kind == "object" or "properties" in node:
        if "properties" in node:
            schema["properties"] = {name: _convert(value) for name, value in node["properties"].items()}
        if "additionalProperties" in node:
            extra = node["additionalProperties"]
            schema["additionalProperties"] = _convert(extra) if extra else True
        elif "properties" in node:
            schema["additionalProperties"] = False
    return schema


@pytest.fixture(scope="module")
def swagger():
    return json.loads(SWAGGER.read_text())


@pytest.fixture(scope="module")
def definitions(swagger):
    return {name: _convert(node) for name, node in swagger["definitions"].items()}


def _response_schema(swagger, definitions, method, template, status="200"):
    operation = swagger["paths"][template][method.lower()]
    node = (
        operation["responses"][status]["schema"]
        if status == "200"
        else operation["responses"]["default"]["schema"]
    )
    return {**_convert(node), "definitions": definitions}


def _assert_conforms(swagger, definitions, method, template, body, status="200"):
    schema = _response_schema(swagger, definitions, method, template, status)
    validator = jsonschema.Draft4Validator(schema)
    problems = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    assert not problems, "\n".join(f"{list(p.absolute_path)}: {p.message}" for p in problems)


def test_pipeline_and_version_responses_conform(emulator, swagger, definitions, penguin):
    pipeline_id = penguin.pipeline_id
    versions = raw_call(emulator.url, "GET", f"/apis/v2beta1/pipelines/{pipeline_id}/versions").body
    version_id = versions["pipeline_versions"][0]["pipeline_version_id"]

    calls = [
        ("/apis/v2beta1/pipelines", "/apis/v2beta1/pipelines"),
        (f"/apis/v2beta1/pipelines/{pipeline_id}", "/apis/v2beta1/pipelines/{pipeline_id}"),
        (f"/apis/v2beta1/pipelines/names/{penguin.name}", "/apis/v2beta1/pipelines/names/{name}"),
        (f"/apis/v2beta1/pipelines/{pipeline_id}/versions", "/apis/v2beta1/pipelines/{pipeline_id}/versions"),
        (
            f"/apis/v2beta1/pipelines/{pipeline_id}/versions/{version_id}",
            "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}",
        ),
    ]
    for path, template in calls:
        response = raw_call(emulator.url, "GET", path, query={"page_size": 2} if path.endswith("s") else None)
        assert response.status == 200, path
        _assert_conforms(swagger, definitions, "GET", template, response.body)


def test_experiment_responses_conform(emulator, swagger, definitions):
    created = raw_call(emulator.url, "POST", "/apis/v2beta1/experiments", body={"display_name": unique("e")})
    experiment = created.body
    _assert_conforms(swagger, definitions, "POST", "/apis/v2beta1/experiments", experiment)

    fetched = raw_call(emulator.url, "GET", f"/apis/v2beta1/experiments/{experiment['experiment_id']}")
    listed = raw_call(emulator.url, "GET", "/apis/v2beta1/experiments", query={"page_size": 1})

    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/experiments/{experiment_id}", fetched.body)
    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/experiments", listed.body)
    assert listed.body["next_page_token"]


def test_run_responses_conform_through_the_lifecycle(emulator, swagger, definitions, kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(tasks={"Pusher": Task(held=True)}))
    body = {
        "display_name": "contract",
        "description": "d",
        "pipeline_version_reference": {"pipeline_id": penguin.pipeline_id},
        "runtime_config": {
            "parameters": PENGUIN_PARAMETERS,
            "pipeline_root": str(Path(emulator.config.state_dir)),
        },
    }
    created = raw_call(emulator.url, "POST", "/apis/v2beta1/runs", body=body)
    run_id = created.body["run_id"]
    _assert_conforms(swagger, definitions, "POST", "/apis/v2beta1/runs", created.body)

    ctl.wait_for_task(run_id, "Pusher", "RUNNING")
    # A real server knows once its agent has reported the Workflow.
    running = wait_until(
        lambda: (
            (r := raw_call(emulator.url, "GET", f"/apis/v2beta1/runs/{run_id}")).body.get("run_details") and r
        ),
        timeout=15,
        message="the running run's task details",
    )
    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/runs/{run_id}", running.body)

    terminated = raw_call(emulator.url, "POST", f"/apis/v2beta1/runs/{run_id}:terminate")
    _assert_conforms(swagger, definitions, "POST", "/apis/v2beta1/runs/{run_id}:terminate", terminated.body)
    kfp.wait_until_finished(run_id)

    finished = raw_call(emulator.url, "GET", f"/apis/v2beta1/runs/{run_id}")
    listed = raw_call(emulator.url, "GET", "/apis/v2beta1/runs", query={"page_size": 3})
    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/runs/{run_id}", finished.body)
    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/runs", listed.body)


def test_error_bodies_conform(emulator, swagger, definitions):
    missing = raw_call(emulator.url, "GET", "/apis/v2beta1/runs/no-such-run")
    bad_filter = raw_call(emulator.url, "GET", "/apis/v2beta1/runs", query={"filter": "{"})

    _assert_conforms(
        swagger, definitions, "GET", "/apis/v2beta1/runs/{run_id}", missing.body, status="default"
    )
    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/runs", bad_filter.body, status="default")


def test_healthz_conforms_apart_from_the_documented_extra_fields(emulator, swagger, definitions):
    body = raw_call(emulator.url, "GET", "/apis/v2beta1/healthz").body

    assert set(body) - set(definitions["v2beta1GetHealthzResponse"]["properties"]) == {
        "commit_sha",
        "tag_name",
    }
    documented = {key: value for key, value in body.items() if key not in ("commit_sha", "tag_name")}
    _assert_conforms(swagger, definitions, "GET", "/apis/v2beta1/healthz", documented)
