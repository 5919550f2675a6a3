"""Runtime parameters checked against root.inputDefinitions.parameters, as the server does."""

from __future__ import annotations

import pytest
from kfp_server_api.exceptions import ApiException

from tests.emulator.helpers import TYPED_PARAMETERS_YAML, error_body, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract

VALID = {
    "count": 3,
    "ratio": 0.5,
    "label": "x",
    "enabled": True,
    "columns": ["a", "b"],
    "options": {"k": 1},
}


@pytest.fixture
def typed(kfp):
    return kfp.upload(TYPED_PARAMETERS_YAML, name=unique("typed-parameters"))


def _rejection(kfp, pipeline, parameters):
    with pytest.raises(ApiException) as raised:
        kfp.create_run(pipeline.pipeline_id, parameters=parameters)
    assert raised.value.status == 400
    body = error_body(raised.value)
    assert body["code"] == 3
    return body["details"][0]["message"]


def test_values_of_every_type_are_accepted_and_optional_ones_may_be_left_out(kfp, typed):
    run = kfp.create_run(typed.pipeline_id, parameters=VALID)

    assert run.state == "PENDING"
    assert run.runtime_config.parameters == VALID


def test_integers_accept_any_number_as_the_server_checks_only_the_kind(kfp, typed):
    run = kfp.create_run(typed.pipeline_id, parameters={**VALID, "count": 2.5})

    assert run.runtime_config.parameters["count"] == 2.5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("count", "3", "input parameter count requires type double or integer, but the parameter value is not of number value type"),  # noqa: E501
        ("ratio", True, "input parameter ratio requires type double or integer, but the parameter value is not of number value type"),  # noqa: E501
        ("label", 5, "input parameter label requires type string, but the input parameter is not of string value type"),  # noqa: E501
        ("enabled", "true", "input parameter enabled requires type bool, but the input parameter is not of bool value type"),  # noqa: E501
        ("columns", "a,b", "input parameter columns requires type list, but the input parameter is not of list value type"),  # noqa: E501
        ("options", ["k"], "input parameter options requires type struct, but the input parameter is not of struct value type"),  # noqa: E501
        ("note", None, "input parameter note requires type string, but the input parameter is not of string value type"),  # noqa: E501
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_a_400(kfp, typed, name, value, message):
    assert _rejection(kfp, typed, {**VALID, name: value}) == message


def test_a_missing_required_parameter_is_a_400(kfp, typed):
    parameters = {key: value for key, value in VALID.items() if key != "enabled"}

    assert _rejection(kfp, typed, parameters) == (
        "parameter enabled is not optional, yet has neither default value nor user provided value"
    )


def test_extra_parameters_are_a_400(kfp, typed):
    assert _rejection(kfp, typed, {**VALID, "surplus": 1}) == (
        "parameter(s) provided are not required by pipeline: surplus"
    )
