"""Plain Python values from ML Metadata property values, as artifact filters see them.

The values are the ones the Go kfp-operator evaluated its filters against, so that a filter keeps
its answer. There, the KFP provider turned an artifact's custom properties into a map
(``propertiesToPrimitiveMap``: int64, float64, string, and ``Struct.AsMap()``, other kinds left
out), sent it to the operator as JSON, and the operator decoded that JSON into a
``map[string]interface{}``, which go-bexpr evaluated. So each MLMD ``Value`` becomes:

* ``int_value`` -> ``float``: JSON decoding makes every number a float64. KFP writes booleans
  as 0 and 1 this way, and TFX writes ``pushed`` this way; ``pushed == 1`` and ``pushed == 1.0``
  both match 1. Integers beyond 2**53 round to the nearest float, as they did there.
* ``double_value`` -> ``float``, NaN and infinities included (the reference could not send
  those at all: Go's JSON encoder refuses them, and its completion event failed).
* ``string_value`` -> ``str``.
* ``struct_value`` -> ``dict`` of JSON values: ``float``, ``str``, ``bool``, ``None``, ``list``,
  ``dict``. It is kept as it is: KFP's ``{"list": [...]}`` wrapping of a list property stays a
  map with the key ``list`` (``"prod" in tags.list``), as the reference saw it.
* ``bool_value``, ``proto_value`` or nothing set -> left out, so the property counts as missing.

Maps are built in key order, so that the order ``any``/``all`` go through them in is stable
(go-bexpr's was Go's random map order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["MISSING", "MlmdValue", "python_properties", "python_value"]


class MlmdValue(Protocol):
    """An ``ml_metadata.Value`` message (any protobuf class generated or built from MLMD's proto)."""

    def WhichOneof(self, oneof_group: str) -> str | None: ...

    int_value: int
    double_value: float
    string_value: str
    struct_value: Any


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""What python_value returns for a value the reference left out of the properties."""


def python_properties(properties: Mapping[str, MlmdValue]) -> dict[str, object]:
    """Convert an artifact's ``custom_properties`` to plain Python values (see the module docstring)."""
    converted = {name: python_value(properties[name]) for name in sorted(properties)}
    return {name: value for name, value in converted.items() if value is not MISSING}


def python_value(value: MlmdValue) -> object:
    """Convert one MLMD property value to a plain Python value, or MISSING."""
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return float(value.int_value)
    if kind == "double_value":
        return value.double_value
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return _json_object(value.struct_value)
    return MISSING


# Recursion over structs is bounded: protobuf refuses to parse messages nested more than 100
# levels deep, and MLMD values arrive parsed from the wire.
# google.protobuf Struct, ListValue and Value messages, read by their fields.
def _json_object(struct: Any) -> dict[str, object]:
    fields: Mapping[str, Any] = struct.fields
    return {key: _json_value(fields[key]) for key in sorted(fields)}


def _json_list(values: Any) -> list[object]:
    items: Iterable[Any] = values.values
    return [_json_value(inner) for inner in items]


def _json_value(value: Any) -> object:
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
