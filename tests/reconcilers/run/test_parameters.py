"""Conversion of string parameter values to the types a KFP v2 pipeline declares."""

from __future__ import annotations

import pytest

from reconcilers.run.parameters import InvalidParameterValue, convert_value, declared_parameter_types


@pytest.mark.parametrize(
    ("value", "parameter_type", "expected"),
    [
        ("100", "NUMBER_INTEGER", 100),
        (" -3 ", "NUMBER_INTEGER", -3),
        ("0.5", "NUMBER_DOUBLE", 0.5),
        ("1e3", "NUMBER_DOUBLE", 1000.0),
        ("True", "BOOLEAN", True),
        ("false", "BOOLEAN", False),
        ('["a", 1]', "LIST", ["a", 1]),
        ('{"k": {"n": 1}}', "STRUCT", {"k": {"n": 1}}),
        ("s3://bucket/x", "STRING", "s3://bucket/x"),
        ("anything", "", "anything"),
    ],
)
def test_values_are_converted_to_the_declared_type(value, parameter_type, expected) -> None:
    assert convert_value("P", value, parameter_type) == expected


@pytest.mark.parametrize(
    ("value", "parameter_type", "message"),
    [
        ("1.5", "NUMBER_INTEGER", "parameter P: '1.5' is not an integer"),
        ("x", "NUMBER_DOUBLE", "parameter P: 'x' is not a number"),
        ("nan", "NUMBER_DOUBLE", "parameter P: 'nan' is not a finite number"),
        ("yes", "BOOLEAN", "parameter P: 'yes' is not true or false"),
        ('{"a": 1}', "LIST", "parameter P: '{\"a\": 1}' is not a JSON list"),
        ("[1]", "STRUCT", "parameter P: '[1]' is not a JSON object"),
    ],
)
def test_values_that_do_not_fit_are_rejected_with_the_parameter_name(value, parameter_type, message) -> None:
    with pytest.raises(InvalidParameterValue) as raised:
        convert_value("P", value, parameter_type)

    assert str(raised.value) == message


def test_declared_types_come_from_the_root_input_definitions() -> None:
    spec = {"root": {"inputDefinitions": {"parameters": {"N": {"parameterType": "NUMBER_INTEGER"}}}}}

    assert declared_parameter_types(spec) == {"N": "NUMBER_INTEGER"}
    assert declared_parameter_types({"pipeline_spec": spec, "platform_spec": {}}) == {"N": "NUMBER_INTEGER"}
    assert declared_parameter_types(None) == {}
