"""Helpers for the emulator tests: raw HTTP calls, KFP clients, waiting on runs."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import kfp_server_api
from kfp_server_api.exceptions import ApiException
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from kfp_devstack.emulator import Emulator
from kfp_devstack.waiting import wait_until

PIPELINES_DIR = Path(__file__).resolve().parents[2] / "examples" / "pipelines"
PENGUIN_YAML = PIPELINES_DIR / "penguin_pipeline.yaml"
EXAMPLE_GENERATOR_YAML = PIPELINES_DIR / "example_generator.yaml"
TYPED_PARAMETERS_YAML = PIPELINES_DIR / "typed_parameters.yaml"

PENGUIN_PARAMETERS = {"TRAINING_RUNS": 100, "EXAMPLES": "gs://penguin/examples"}
TERMINAL_STATES = ("SUCCEEDED", "FAILED")
# The state of a run once the persistence agent has reported its Workflow, before it runs: the enum's
# zero value, which the server leaves out of its JSON (the client then reads None).
UNSPECIFIED = "RUNTIME_STATE_UNSPECIFIED"


def state_of(run: Any) -> str:
    """A run's state, from a client model or a JSON body; a missing state is UNSPECIFIED."""
    state = run.get("state") if isinstance(run, dict) else run.state
    return state or UNSPECIFIED


def history_of(run: Any) -> list[str]:
    """The states of a run's state history, UNSPECIFIED for an entry without a state."""
    if isinstance(run, dict):
        return [change.get("state") or UNSPECIFIED for change in run["state_history"]]
    return [change.state or UNSPECIFIED for change in run.state_history]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class RawResponse:
    status: int
    body: Any
    text: str


def raw_call(
    base_url: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    raw_body: bytes | None = None,
) -> RawResponse:
    """One HTTP call without a client library, for what the generated client cannot express."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
    target = path + ("?" + urlencode(query) if query else "")
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        connection.request(method, target, body=data, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = None
    return RawResponse(response.status, parsed, text)


def error_body(error: ApiException) -> dict[str, Any]:
    return json.loads(error.body)


class Kfp:
    """The official generated client's service APIs for one emulator."""

    def __init__(self, url: str, *, token: str | None = None) -> None:
        configuration = kfp_server_api.Configuration(host=url)
        if token is not None:
            configuration.api_key["authorization"] = token
            configuration.api_key_prefix["authorization"] = "Bearer"
        self.url = url
        self.client = kfp_server_api.ApiClient(configuration)
        self.pipelines = kfp_server_api.PipelineServiceApi(self.client)
        self.uploads = kfp_server_api.PipelineUploadServiceApi(self.client)
        self.experiments = kfp_server_api.ExperimentServiceApi(self.client)
        self.runs = kfp_server_api.RunServiceApi(self.client)
        self.healthz = kfp_server_api.HealthzServiceApi(self.client)

    def upload(self, path: Path = PENGUIN_YAML, name: str | None = None, **kwargs: Any) -> Any:
        return self.uploads.upload_pipeline(str(path), name=name or unique("penguin-pipeline"), **kwargs)

    def create_run(
        self,
        pipeline_id: str,
        *,
        parameters: dict[str, Any] | None = None,
        display_name: str | None = None,
        experiment_id: str | None = None,
        version_id: str | None = None,
        **fields: Any,
    ) -> Any:
        run = kfp_server_api.V2beta1Run(
            display_name=display_name or unique("run"),
            experiment_id=experiment_id,
            pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
                pipeline_id=pipeline_id, pipeline_version_id=version_id
            ),
            runtime_config=kfp_server_api.V2beta1RuntimeConfig(
                parameters=PENGUIN_PARAMETERS if parameters is None else parameters
            ),
            **fields,
        )
        return self.runs.run_service_create_run(run)

    def wait_for_state(self, run_id: str, states: Iterable[str], timeout: float = 15.0) -> Any:
        wanted = tuple(states)
        last: dict[str, Any] = {}

        def reached() -> Any:
            run = self.runs.run_service_get_run(run_id)
            last["state"] = state_of(run)
            return run if state_of(run) in wanted else None

        return wait_until(
            reached,
            timeout=timeout,
            message=lambda: f"run {run_id} in {wanted} (last state {last.get('state')})",
        )

    def wait_until_finished(self, run_id: str, timeout: float = 15.0) -> Any:
        return self.wait_for_state(run_id, TERMINAL_STATES, timeout)

    def wait_until_reported(self, run_id: str, timeout: float = 15.0) -> Any:
        """Waits for the agent's first report of a run that has not started: its state goes."""
        return self.wait_for_state(run_id, (UNSPECIFIED,), timeout)

    def create_reported_run(self, ctl: Any, pipeline_id: str, **kwargs: Any) -> Any:
        """Creates a run of a pipeline scripted ``hold_pending``, waits until the agent has reported it
        (its state gone), then lets it start: its history always has the entry without a state,
        whichever backend answers."""
        run = self.create_run(pipeline_id, **kwargs)
        self.wait_until_reported(run.run_id)
        ctl.release(run.run_id)
        return run

    def as_json(self, model: Any) -> Any:
        return self.client.sanitize_for_serialization(model)


def connect_mlmd(emulator: Emulator) -> metadata_store.MetadataStore:
    """A gRPC MLMD client configured as KFP's own (100 MB messages)."""
    config = metadata_store_pb2.MetadataStoreClientConfig(
        host=emulator.mlmd_host, port=emulator.mlmd_port, client_timeout_sec=10
    )
    config.channel_arguments.max_receive_message_length = 100 * 1024 * 1024
    return metadata_store.MetadataStore(config)
