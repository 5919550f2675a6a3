"""Plain Python values from ML Metadata property values, as artifact filters see them.

MLMD stores each custom property as a ``Value`` holding one of:

* ``int_value`` -> ``int``. KFP writes booleans this way (``True`` -> 1) and TFX writes
  ``pushed`` this way, which is why ``pushed == 1`` is how filters test them.
* ``double_value`` -> ``float``: every number KFP writes, integral or not.
* ``string_value`` -> ``str``.
* ``bool_value`` -> ``bool``.
* ``struct_value`` -> ``list`` or ``dict``. KFP wraps a list as ``{"list": [...]}`` and an object
  as ``{"struct": {...}}``; that wrapping is removed. A struct of any other shape becomes a
  ``dict`` as it is. Inside a struct, numbers are ``float``, JSON null is ``None``.
* ``proto_value`` -> ``OpaqueProto``: an arbitrary protobuf message, which a filter cannot look
  into; any comparison with it is an evaluation error (so the artifact does not match), but the
  property still counts as present.
* nothing set -> ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf import struct_pb2
from ml_metadata.proto import metadata_store_pb2

__all__ = ["OpaqueProto", "python_properties", "python_value"]


@dataclass(frozen=True)
class OpaqueProto:
    """A property holding a protobuf message, identified by its type URL."""

    type_url: str

    def __str__(self) -> str:
        return f"protobuf message {self.type_url}"


def python_properties(properties: Mapping[str, metadata_store_pb2.Value]) -> dict[str, object]:
    """Convert an artifact's ``custom_properties`` (or ``properties``) to plain Python values."""
    return {name: python_value(value) for name, value in properties.items()}


def python_value(value: metadata_store_pb2.Value) -> object:
    """Convert one MLMD property value to a plain Python value (see the module docstring)."""
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _unwrap_kfp_container(value.struct_value)
    if kind == "proto_value":
        return OpaqueProto(value.proto_value.type_url)
    return None


def _unwrap_kfp_container(struct: struct_pb2.Struct) -> object:
    # KFP's StructValueToMLMDValue wraps only the top level, so nested values are plain JSON.
    if len(struct.fields) == 1:
        ((key, inner),) = struct.fields.items()
        if key == "list" and inner.WhichOneof("kind") == "list_value":
            return _json_list(inner.list_value)
        if key == "struct" and inner.WhichOneof("kind") == "struct_value":
            return _json_object(inner.struct_value)
    return _json_object(struct)


# Recursion over structs is bounded: protobuf refuses to parse messages nested more than 100
# levels deep, and MLMD values arrive parsed from the wire.
def _json_object(struct: struct_pb2.Struct) -> dict[str, object]:
    return {key: _json_value(inner) for key, inner in struct.fields.items()}


def _json_list(values: struct_pb2.ListValue) -> list[object]:
    return [_json_value(inner) for inner in values.values]


def _json_value(value: struct_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _json_object(value.struct_value)
    if kind == "list_value":
        return _json_list(value.list_value)
    return None
