"""Request decoding and response encoding as grpc-gateway does them, checked over raw HTTP."""

from __future__ import annotations

import pytest

from tests.emulator.helpers import raw_call, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract


def test_an_unknown_field_in_a_body_is_a_400_naming_it(emulator):
    response = raw_call(
        emulator.url, "POST", "/apis/v2beta1/experiments", body={"display_name": unique("e"), "colour": "red"}
    )

    assert response.status == 400
    assert response.body["code"] == 3
    assert response.body["message"].startswith("proto: (line 1:")
    assert response.body["message"].endswith('unknown field "colour"')
    assert "details" not in response.body


def test_json_names_are_accepted_as_well_as_proto_names(emulator):
    name = unique("camel")

    response = raw_call(emulator.url, "POST", "/apis/v2beta1/experiments", body={"displayName": name})

    assert response.status == 200
    assert response.body["display_name"] == name


def test_a_value_of_the_wrong_type_is_a_400(emulator):
    response = raw_call(emulator.url, "POST", "/apis/v2beta1/experiments", body={"display_name": 5})

    assert response.status == 400
    # protojson names the field by its JSON name, whichever name the request used
    assert response.body["message"].endswith("invalid value for string field displayName: 5")


def test_two_members_of_a_oneof_are_a_400(emulator):
    body = {
        "display_name": "r",
        "pipeline_spec": {"pipelineInfo": {"name": "x"}, "root": {}},
        "pipeline_version_reference": {"pipeline_id": "p"},
    }

    response = raw_call(emulator.url, "POST", "/apis/v2beta1/runs", body=body)

    assert response.status == 400
    assert "oneof" in response.body["message"]


def test_enum_numbers_are_accepted_on_input(emulator):
    response = raw_call(
        emulator.url,
        "POST",
        "/apis/v2beta1/experiments",
        body={"display_name": unique("e"), "storage_state": 2},
    )

    assert response.status == 200
    assert response.body["storage_state"] == "AVAILABLE"  # output-only: the server sets it


def test_empty_fields_are_omitted_and_unset_times_are_the_epoch(emulator, penguin):
    response = raw_call(emulator.url, "GET", f"/apis/v2beta1/pipelines/{penguin.pipeline_id}")

    assert set(response.body) == {"pipeline_id", "name", "display_name", "created_at"}
    assert response.body["created_at"].endswith("Z") and len(response.body["created_at"]) == 20

    run = raw_call(
        emulator.url,
        "POST",
        "/apis/v2beta1/runs",
        body={
            "display_name": "r",
            "pipeline_version_reference": {"pipeline_id": penguin.pipeline_id},
            "runtime_config": {"parameters": {"TRAINING_RUNS": 1, "EXAMPLES": "x"}},
        },
    )
    assert run.body["finished_at"] == "1970-01-01T00:00:00Z"
    assert "description" not in run.body and "run_details" not in run.body


def test_empty_lists_and_empty_responses_are_an_empty_object(emulator):
    no_match = (
        '{"predicates":[{"key":"display_name","operation":"EQUALS","string_value":"no-such-experiment"}]}'
    )

    listed = raw_call(emulator.url, "GET", "/apis/v2beta1/experiments", query={"filter": no_match})
    created = raw_call(emulator.url, "POST", "/apis/v2beta1/experiments", body={"display_name": unique("e")})
    archived = raw_call(
        emulator.url, "POST", f"/apis/v2beta1/experiments/{created.body['experiment_id']}:archive"
    )

    assert (listed.status, listed.text) == (200, "{}")
    assert (archived.status, archived.text) == (200, "{}")


def test_unknown_paths_and_methods_get_the_gateway_bodies(emulator):
    missing = raw_call(emulator.url, "GET", "/apis/v2beta1/nothing-here")
    wrong_method = raw_call(emulator.url, "PATCH", "/apis/v2beta1/runs")

    assert (missing.status, missing.body) == (404, {"code": 5, "message": "Not Found"})
    assert (wrong_method.status, wrong_method.body) == (501, {"code": 12, "message": "Method Not Allowed"})


def test_a_malformed_number_in_the_query_is_a_400_naming_the_field(emulator):
    response = raw_call(emulator.url, "GET", "/apis/v2beta1/runs", query={"page_size": "ten"})

    assert response.status == 400
    assert (
        response.body["message"]
        == 'parsing field "page_size": strconv.ParseInt: parsing "ten": invalid syntax'
    )


def test_healthz_answers_the_plain_handler_fields(kfp, emulator):
    response = raw_call(emulator.url, "GET", "/apis/v2beta1/healthz")

    assert response.body == {
        "commit_sha": response.body["commit_sha"],  # "emulator", or the real server's commit
        "tag_name": "2.17.0",
        "multi_user": False,
        "pipeline_store": "database",
    }
    assert response.body["commit_sha"]
    assert kfp.healthz.healthz_service_get_healthz().multi_user is False
