"""ML Metadata values as the Go kfp-operator's filters saw them: JSON-decoded, through go-bexpr.

tests/reconcilers/artifacts/test_bexpr_differential.py checks the same mapping on every case of
its corpus against go-bexpr itself; these tests spell it out value kind by value kind.
"""

from __future__ import annotations

import math

import pytest
from google.protobuf import any_pb2, struct_pb2
from ml_metadata.proto import metadata_store_pb2

from reconcilers.artifacts.filter import parse_filter
from reconcilers.artifacts.mlmd_values import MISSING, python_properties, python_value


def struct_value(contents: dict[str, object]) -> metadata_store_pb2.Value:
    value = metadata_store_pb2.Value()
    value.struct_value.SetInParent()  # so that even an empty struct is set
    value.struct_value.update(contents)
    return value


def test_int_value_becomes_a_float_as_json_decoding_made_it() -> None:
    converted = python_value(metadata_store_pb2.Value(int_value=1))
    assert converted == 1.0
    assert type(converted) is float


def test_integers_beyond_2_to_the_53_round_to_the_nearest_float() -> None:
    assert python_value(metadata_store_pb2.Value(int_value=2**53 + 1)) == float(2**53)
    assert python_value(metadata_store_pb2.Value(int_value=-(2**63))) == -(2.0**63)


def test_double_value_becomes_a_float() -> None:
    converted = python_value(metadata_store_pb2.Value(double_value=1.0))
    assert converted == 1.0
    assert type(converted) is float


def test_string_value_becomes_a_str() -> None:
    assert python_value(metadata_store_pb2.Value(string_value="gs://bucket/model")) == "gs://bucket/model"


@pytest.mark.parametrize(
    "value",
    [
        metadata_store_pb2.Value(bool_value=True),
        metadata_store_pb2.Value(bool_value=False),
        metadata_store_pb2.Value(),
    ],
)
def test_bool_and_empty_values_are_left_out_as_the_reference_left_them(
    value: metadata_store_pb2.Value,
) -> None:
    assert python_value(value) is MISSING


def test_a_proto_value_is_left_out() -> None:
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Struct())
    assert python_value(metadata_store_pb2.Value(proto_value=packed)) is MISSING


def test_a_struct_becomes_a_dict_of_json_values() -> None:
    converted = python_value(struct_value({"k": [1, "a", True, None, {"n": 2}, [3]], "m": {}}))
    assert converted == {"k": [1.0, "a", True, None, {"n": 2.0}, [3.0]], "m": {}}
    assert type(converted["k"][0]) is float  # type: ignore[index]


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        # KFP's wrapping of list and object metadata is kept, as the reference kept it.
        ({"list": ["prod", "eu"]}, {"list": ["prod", "eu"]}),
        ({"struct": {"accuracy": 0.9}}, {"struct": {"accuracy": 0.9}}),
        ({"list": []}, {"list": []}),
        ({"accuracy": 0.9}, {"accuracy": 0.9}),
        ({}, {}),
    ],
)
def test_a_struct_is_kept_as_it_is(contents: dict[str, object], expected: dict[str, object]) -> None:
    assert python_value(struct_value(contents)) == expected


def test_special_doubles_survive() -> None:
    assert math.isnan(python_value(metadata_store_pb2.Value(double_value=math.nan)))  # type: ignore[arg-type]
    assert python_value(metadata_store_pb2.Value(double_value=-math.inf)) == -math.inf


def kfp_artifact() -> metadata_store_pb2.Artifact:
    """An artifact as the KFP v2 launcher writes it for metadata {pushed: True, ...}."""
    artifact = metadata_store_pb2.Artifact(uri="minio://mlpipeline/v2/artifacts/p/r/push/u/model")
    properties = artifact.custom_properties
    properties["pushed"].int_value = 1
    properties["display_name"].string_value = "model"
    properties["accuracy"].double_value = 0.93
    properties["tags"].struct_value.update({"list": ["prod", "eu"]})
    properties["metrics"].struct_value.update({"struct": {"loss": 0.1, "per_class": {"cat": 0.9}}})
    properties["flag"].bool_value = True
    return artifact


def test_all_custom_properties_of_an_artifact_are_converted_in_key_order() -> None:
    converted = python_properties(kfp_artifact().custom_properties)
    assert converted == {
        "pushed": 1.0,
        "display_name": "model",
        "accuracy": 0.93,
        "tags": {"list": ["prod", "eu"]},
        "metrics": {"struct": {"loss": 0.1, "per_class": {"cat": 0.9}}},
    }
    assert list(converted) == sorted(converted)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pushed == 1", True),
        ("pushed == 1.0", True),
        ('pushed == "0x1p0"', True),
        ("pushed == true", False),  # a number: "true" cannot be converted
        ("pushed is not nil", False),  # 'is nil' applies to lists, maps and null only
        ("accuracy == 0.93", True),
        ("prod in tags", False),  # tags is KFP's wrapping map {"list": [...]}
        ("list in tags", True),
        ("prod in tags.list", True),
        ("us in tags.list", False),
        ("metrics.struct.per_class.cat == 0.9", True),
        ("metrics.struct.per_class.dog is empty", True),
        ("loss in metrics.struct", True),
        ("any tags.list as tag { tag == eu }", True),
        ('display_name matches "^mod"', True),
        ("flag == true", False),  # a bool value: the reference left it out
        ("flag is nil", False),
        ("pushed_destination != x", False),
    ],
)
def test_filters_read_converted_kfp_properties(text: str, expected: bool) -> None:
    properties = python_properties(kfp_artifact().custom_properties)
    assert parse_filter(text).matches(properties) is expected
