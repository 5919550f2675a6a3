"""Injected faults: HTTP errors, latency, lost responses, an unavailable MLMD service."""

from __future__ import annotations

import json
import time

import pytest
import urllib3
from kfp_server_api.exceptions import ApiException
from ml_metadata import errors as mlmd_errors

from kfp_devstack.emulator import Fault
from kfp_devstack.waiting import wait_until
from tests.emulator.helpers import PENGUIN_YAML, error_body, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract


def test_an_error_fault_answers_the_next_n_calls_with_the_real_body(kfp, ctl, penguin):
    ctl.inject_fault(Fault.error("GET", "/apis/v2beta1/pipelines/{pipeline_id}", 503, times=2))

    failures = []
    for _ in range(2):
        with pytest.raises(ApiException) as raised:
            kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id)
        failures.append(raised.value)

    assert [failure.status for failure in failures] == [503, 503]
    body = error_body(failures[0])
    assert body["code"] == 14
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.Status"
    assert kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id).name == penguin.name


def test_an_error_fault_can_carry_its_own_body_and_match_an_exact_path(kfp, ctl, penguin):
    body = {"code": 13, "message": "boom", "details": []}
    ctl.inject_fault(Fault.error("*", f"/apis/v2beta1/pipelines/{penguin.pipeline_id}", 500, body=body))

    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id)

    assert (raised.value.status, error_body(raised.value)) == (500, body)
    other = kfp.upload()
    assert kfp.pipelines.pipeline_service_get_pipeline(other.pipeline_id).name == other.name


def test_an_error_fault_on_an_upload_uses_the_upload_error_shape(kfp, ctl):
    ctl.inject_fault(Fault.error("POST", "/apis/v2beta1/pipelines/upload", 500))

    with pytest.raises(ApiException) as raised:
        kfp.uploads.upload_pipeline(str(PENGUIN_YAML), name=unique("faulted"))

    assert raised.value.status == 500
    assert set(error_body(raised.value)) == {"error_message", "error_details"}


def test_a_failed_call_does_not_happen(kfp, ctl, penguin):
    display_name = unique("never")
    ctl.inject_fault(Fault.error("POST", "/apis/v2beta1/runs", 500))

    with pytest.raises(ApiException):
        kfp.create_run(penguin.pipeline_id, display_name=display_name)

    assert kfp.runs.run_service_list_runs(filter=_display_name_is(display_name)).runs is None


def test_latency_delays_matching_calls(kfp, ctl):
    ctl.inject_fault(Fault.latency("GET", "/apis/v2beta1/healthz", 0.3, times=1))

    started = time.monotonic()
    kfp.healthz.healthz_service_get_healthz()

    assert time.monotonic() - started >= 0.3
    assert ctl.faults() == {}  # used up after one call


def test_a_dropped_create_response_still_creates_the_run(kfp, ctl, penguin):
    display_name = unique("lost-response")
    ctl.inject_fault(Fault.drop_response("POST", "/apis/v2beta1/runs"))
    ctl.reset_calls()

    with pytest.raises((urllib3.exceptions.ProtocolError, ConnectionError, urllib3.exceptions.MaxRetryError)):
        kfp.create_run(penguin.pipeline_id, display_name=display_name)

    [run] = kfp.runs.run_service_list_runs(filter=_display_name_is(display_name)).runs
    assert run.display_name == display_name
    assert ctl.calls()["POST /apis/v2beta1/runs"] == 1  # one call, which committed


def test_a_held_response_makes_the_client_time_out_though_the_run_exists(kfp, ctl, penguin):
    display_name = unique("timed-out")
    ctl.inject_fault(Fault.drop_response("POST", "/apis/v2beta1/runs", hold_seconds=1.0))

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        kfp.runs.run_service_create_run(
            _run_body(penguin.pipeline_id, display_name), _request_timeout=(2, 0.3)
        )

    # The server committed the run before it held the response.
    [run] = wait_until(
        lambda: kfp.runs.run_service_list_runs(filter=_display_name_is(display_name)).runs,
        timeout=10,
        message="the run behind the lost response",
    )
    assert run.display_name == display_name


def test_clear_faults_removes_them(kfp, ctl):
    ctl.inject_fault(Fault.error("GET", "/apis/v2beta1/healthz", 500, times=None))
    assert len(ctl.faults()) == 1

    ctl.clear_faults()

    assert ctl.faults() == {}
    assert kfp.healthz.healthz_service_get_healthz().pipeline_store == "database"


def test_mlmd_can_be_taken_down_and_brought_back(ctl, mlmd):
    ctl.mlmd_down()
    with pytest.raises(mlmd_errors.UnavailableError):
        mlmd.get_context_types()

    ctl.mlmd_up()
    assert mlmd.get_context_by_type_and_name("system.PipelineRun", "no-such-run") is None


def test_kfp_calls_are_counted_by_method_and_route_template(kfp, ctl, penguin):
    ctl.reset_calls()

    kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id)
    kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id)
    kfp.runs.run_service_list_runs()

    assert ctl.calls() == {"GET /apis/v2beta1/pipelines/{pipeline_id}": 2, "GET /apis/v2beta1/runs": 1}


def test_bad_fault_documents_are_rejected(ctl):
    from kfp_devstack.emulator import ControlError

    with pytest.raises(ControlError) as raised:
        ctl.inject_fault(Fault(method="GET", path="no-slash", kind="error"))

    assert raised.value.status == 400


def _display_name_is(name):
    return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})


def _run_body(pipeline_id, display_name):
    from kfp_server_api import V2beta1PipelineVersionReference, V2beta1Run, V2beta1RuntimeConfig

    from tests.emulator.helpers import PENGUIN_PARAMETERS

    return V2beta1Run(
        display_name=display_name,
        pipeline_version_reference=V2beta1PipelineVersionReference(pipeline_id=pipeline_id),
        runtime_config=V2beta1RuntimeConfig(parameters=PENGUIN_PARAMETERS),
    )
