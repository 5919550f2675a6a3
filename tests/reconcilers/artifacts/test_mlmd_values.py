from __future__ import annotations

import math

import pytest
from google.protobuf import any_pb2, struct_pb2
from ml_metadata.proto import metadata_store_pb2

from reconcilers.artifacts.filter import parse_filter
from reconcilers.artifacts.mlmd_values import OpaqueProto, python_properties, python_value


def struct_value(contents: dict[str, object]) -> metadata_store_pb2.Value:
    value = metadata_store_pb2.Value()
    value.struct_value.SetInParent()  # so that even an empty struct is set
    value.struct_value.update(contents)
    return value


def test_int_value_becomes_an_int() -> None:
    converted = python_value(metadata_store_pb2.Value(int_value=1))
    assert converted == 1
    assert type(converted) is int


def test_double_value_becomes_a_float() -> None:
    converted = python_value(metadata_store_pb2.Value(double_value=1.0))
    assert converted == 1.0
    assert type(converted) is float


def test_string_value_becomes_a_str() -> None:
    assert python_value(metadata_store_pb2.Value(string_value="gs://bucket/model")) == "gs://bucket/model"


def test_bool_value_becomes_a_bool() -> None:
    assert python_value(metadata_store_pb2.Value(bool_value=True)) is True
    assert python_value(metadata_store_pb2.Value(bool_value=False)) is False


def test_an_empty_value_becomes_none() -> None:
    assert python_value(metadata_store_pb2.Value()) is None


def test_a_kfp_list_is_unwrapped_with_json_values_inside() -> None:
    converted = python_value(struct_value({"list": [1, "a", True, None, {"k": 2}, [3]]}))
    assert converted == [1.0, "a", True, None, {"k": 2.0}, [3.0]]
    assert type(converted[0]) is float  # type: ignore[index]


def test_a_kfp_object_is_unwrapped() -> None:
    converted = python_value(struct_value({"struct": {"accuracy": 0.9, "labels": ["a", "b"]}}))
    assert converted == {"accuracy": 0.9, "labels": ["a", "b"]}


def test_an_empty_kfp_list_is_unwrapped() -> None:
    assert python_value(struct_value({"list": []})) == []


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        ({"accuracy": 0.9}, {"accuracy": 0.9}),
        ({"list": "not a list"}, {"list": "not a list"}),
        ({"struct": [1]}, {"struct": [1.0]}),
        ({"list": [1], "other": "x"}, {"list": [1.0], "other": "x"}),
        ({}, {}),
    ],
)
def test_a_struct_of_another_shape_is_kept_as_a_dict(
    contents: dict[str, object], expected: dict[str, object]
) -> None:
    assert python_value(struct_value(contents)) == expected


def test_a_proto_value_is_kept_opaque_with_its_type() -> None:
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Struct())
    converted = python_value(metadata_store_pb2.Value(proto_value=packed))
    assert converted == OpaqueProto("type.googleapis.com/google.protobuf.Struct")
    assert str(converted) == "protobuf message type.googleapis.com/google.protobuf.Struct"


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
    return artifact


def test_all_custom_properties_of_an_artifact_are_converted() -> None:
    assert python_properties(kfp_artifact().custom_properties) == {
        "pushed": 1,
        "display_name": "model",
        "accuracy": 0.93,
        "tags": ["prod", "eu"],
        "metrics": {"loss": 0.1, "per_class": {"cat": 0.9}},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pushed == 1", True),
        ("pushed == true", False),  # an int property: "true" cannot be converted
        ("accuracy == 0.93", True),
        ("prod in tags", True),
        ("us in tags", False),
        ("metrics.per_class.cat == 0.9", True),
        ("metrics.per_class.dog is empty", True),
        ("loss in metrics", True),
        ('display_name matches "^mod"', True),
        ("pushed_destination != x", False),
    ],
)
def test_filters_read_converted_kfp_properties(text: str, expected: bool) -> None:
    properties = python_properties(kfp_artifact().custom_properties)
    assert parse_filter(text).matches(properties) is expected


def test_a_filter_on_an_opaque_proto_property_does_not_match() -> None:
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Struct())
    artifact = metadata_store_pb2.Artifact()
    artifact.custom_properties["blob"].proto_value.CopyFrom(packed)
    properties = python_properties(artifact.custom_properties)
    assert parse_filter("blob == x").matches(properties) is False
    assert parse_filter("blob is empty").matches(properties) is False
