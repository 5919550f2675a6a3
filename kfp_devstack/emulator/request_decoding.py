"""Strict decoding of JSON request bodies, as grpc-gateway's protojson unmarshaller does it.

The server's marshaller has ``DiscardUnknown: false``, so an unknown field is a 400
(docs/emulator.md §3). protojson also accepts a field's JSON (lowerCamel) name as
well as its proto name, enum names or numbers, 64-bit integers as numbers or strings,
``null`` as "unset", and rejects duplicate fields, values of the wrong JSON type and a
second member of a oneof. Errors read like protojson's (``proto: (line L:C): ...``).

Each message is described by a small :class:`Message` schema rather than generated
code; only the request messages the API accepts are described.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kfp_devstack.emulator.errors import ApiError, Code, gateway
from kfp_devstack.emulator.timestamps import parse_timestamp

FieldKind = Literal[
    "string",
    "int32",
    "int64",
    "bool",
    "enum",
    "timestamp",
    "message",
    "struct",  # google.protobuf.Struct: any JSON object
    "value_map",  # map<string, google.protobuf.Value>
    "struct_map",  # map<string, google.protobuf.Struct>
    "string_map",  # map<string, string>
    "opaque",  # an output-only message clients do not send; any object is accepted
]


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    message: Message | None = None
    enum: dict[str, int] | None = None
    repeated: bool = False
    oneof: str | None = None

    @property
    def json_name(self) -> str:
        head, *rest = self.name.split("_")
        return head + "".join(part.capitalize() for part in rest)


class Message:
    def __init__(self, full_name: str, fields: Sequence[Field]) -> None:
        self.full_name = full_name
        self.fields = tuple(fields)
        self._by_wire_name: dict[str, Field] = {}
        for field in self.fields:
            self._by_wire_name[field.name] = field
            self._by_wire_name[field.json_name] = field

    def field(self, wire_name: str) -> Field | None:
        return self._by_wire_name.get(wire_name)


class DecodeError(Exception):
    def __init__(self, reason: str, anchor: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.anchor = anchor


RUNTIME_STATES = {
    "RUNTIME_STATE_UNSPECIFIED": 0,
    "PENDING": 1,
    "RUNNING": 2,
    "SUCCEEDED": 3,
    "SKIPPED": 4,
    "FAILED": 5,
    "CANCELING": 6,
    "CANCELED": 7,
    "PAUSED": 8,
}
STORAGE_STATES = {"STORAGE_STATE_UNSPECIFIED": 0, "AVAILABLE": 1, "ARCHIVED": 2}
PREDICATE_OPERATIONS = {
    "OPERATION_UNSPECIFIED": 0,
    "EQUALS": 1,
    "NOT_EQUALS": 2,
    "GREATER_THAN": 3,
    "GREATER_THAN_EQUALS": 5,
    "LESS_THAN": 6,
    "LESS_THAN_EQUALS": 7,
    "IN": 8,
    "IS_SUBSTRING": 9,
}

URL = Message("kubeflow.pipelines.backend.api.v2beta1.Url", [Field("pipeline_url", "string")])

EXPERIMENT = Message(
    "kubeflow.pipelines.backend.api.v2beta1.Experiment",
    [
        Field("experiment_id", "string"),
        Field("display_name", "string"),
        Field("description", "string"),
        Field("created_at", "timestamp"),
        Field("namespace", "string"),
        Field("storage_state", "enum", enum=STORAGE_STATES),
        Field("last_run_created_at", "timestamp"),
    ],
)

PIPELINE = Message(
    "kubeflow.pipelines.backend.api.v2beta1.Pipeline",
    [
        Field("pipeline_id", "string"),
        Field("display_name", "string"),
        Field("name", "string"),
        Field("description", "string"),
        Field("created_at", "timestamp"),
        Field("namespace", "string"),
        Field("error", "opaque"),
        Field("tags", "string_map"),
    ],
)

PIPELINE_VERSION = Message(
    "kubeflow.pipelines.backend.api.v2beta1.PipelineVersion",
    [
        Field("pipeline_id", "string"),
        Field("pipeline_version_id", "string"),
        Field("display_name", "string"),
        Field("name", "string"),
        Field("description", "string"),
        Field("created_at", "timestamp"),
        Field("package_url", "message", message=URL),
        Field("code_source_url", "string"),
        Field("pipeline_spec", "struct"),
        Field("error", "opaque"),
        Field("tags", "string_map"),
    ],
)

CREATE_PIPELINE_AND_VERSION_REQUEST = Message(
    "kubeflow.pipelines.backend.api.v2beta1.CreatePipelineAndVersionRequest",
    [
        Field("pipeline", "message", message=PIPELINE),
        Field("pipeline_version", "message", message=PIPELINE_VERSION),
    ],
)

PIPELINE_VERSION_REFERENCE = Message(
    "kubeflow.pipelines.backend.api.v2beta1.PipelineVersionReference",
    [Field("pipeline_id", "string"), Field("pipeline_version_id", "string")],
)

RUNTIME_CONFIG = Message(
    "kubeflow.pipelines.backend.api.v2beta1.RuntimeConfig",
    [Field("parameters", "value_map"), Field("pipeline_root", "string")],
)

RUNTIME_STATUS = Message(
    "kubeflow.pipelines.backend.api.v2beta1.RuntimeStatus",
    [
        Field("update_time", "timestamp"),
        Field("state", "enum", enum=RUNTIME_STATES),
        Field("error", "opaque"),
    ],
)

RUN = Message(
    "kubeflow.pipelines.backend.api.v2beta1.Run",
    [
        Field("experiment_id", "string"),
        Field("run_id", "string"),
        Field("display_name", "string"),
        Field("storage_state", "enum", enum=STORAGE_STATES),
        Field("description", "string"),
        Field("pipeline_version_id", "string", oneof="pipeline_source"),
        Field("pipeline_spec", "struct", oneof="pipeline_source"),
        Field(
            "pipeline_version_reference",
            "message",
            message=PIPELINE_VERSION_REFERENCE,
            oneof="pipeline_source",
        ),
        Field("runtime_config", "message", message=RUNTIME_CONFIG),
        Field("service_account", "string"),
        Field("created_at", "timestamp"),
        Field("scheduled_at", "timestamp"),
        Field("finished_at", "timestamp"),
        Field("state", "enum", enum=RUNTIME_STATES),
        Field("error", "opaque"),
        Field("run_details", "opaque"),
        Field("recurring_run_id", "string"),
        Field("state_history", "message", message=RUNTIME_STATUS, repeated=True),
        Field("plugins_input", "struct_map"),
        Field("plugins_output", "opaque"),
    ],
)

_INT_VALUES = Message("IntValues", [Field("values", "int32", repeated=True)])
_LONG_VALUES = Message("LongValues", [Field("values", "int64", repeated=True)])
_STRING_VALUES = Message("StringValues", [Field("values", "string", repeated=True)])

PREDICATE = Message(
    "kubeflow.pipelines.backend.api.v2beta1.Predicate",
    [
        Field("operation", "enum", enum=PREDICATE_OPERATIONS),
        Field("key", "string"),
        Field("int_value", "int32", oneof="value"),
        Field("long_value", "int64", oneof="value"),
        Field("string_value", "string", oneof="value"),
        Field("timestamp_value", "timestamp", oneof="value"),
        Field("int_values", "message", message=_INT_VALUES, oneof="value"),
        Field("long_values", "message", message=_LONG_VALUES, oneof="value"),
        Field("string_values", "message", message=_STRING_VALUES, oneof="value"),
    ],
)

FILTER = Message(
    "kubeflow.pipelines.backend.api.v2beta1.Filter",
    [Field("predicates", "message", message=PREDICATE, repeated=True)],
)


def decode_body(message: Message, raw: bytes) -> dict[str, Any]:
    """Decodes a request body; an empty body is the empty message, as grpc-gateway treats EOF."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return {}
    return decode_json_text(message, text)


def decode_json_text(message: Message, text: str) -> dict[str, Any]:
    """Decodes ``text`` as ``message``; raises a gateway-style InvalidArgument ApiError."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates)
    except _DuplicateField as duplicate:
        raise _to_api_error(
            text, DecodeError(f'duplicate field "{duplicate.name}"', duplicate.name)
        ) from None
    except json.JSONDecodeError as err:
        raise gateway(
            Code.INVALID_ARGUMENT, f"proto: syntax error (line {err.lineno}:{err.colno}): {err.msg}"
        ) from None
    if not isinstance(data, dict):
        raise gateway(Code.INVALID_ARGUMENT, f"proto: (line 1:1): unexpected token {_short(data)}")
    try:
        return _decode_message(message, data)
    except DecodeError as err:
        raise _to_api_error(text, err) from None


class _DuplicateField(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateField(key)
        result[key] = value
    return result


def _to_api_error(text: str, err: DecodeError) -> ApiError:
    line, column = _position_of(text, err.anchor)
    return gateway(Code.INVALID_ARGUMENT, f"proto: (line {line}:{column}): {err.reason}")


def _position_of(text: str, key: str | None) -> tuple[int, int]:
    """Line and column of a key in the raw body, to report errors where protojson would."""
    if key is None:
        return 1, 1
    match = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    if match is None:
        return 1, 1
    offset = match.start()
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _decode_message(message: Message, data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    oneofs_seen: dict[str, str] = {}
    for wire_name, value in data.items():
        field = message.field(wire_name)
        if field is None:
            raise DecodeError(f'unknown field "{wire_name}"', wire_name)
        if field.name in result:
            raise DecodeError(f'duplicate field "{wire_name}"', wire_name)
        if value is None:
            continue  # protojson: null leaves a (non-Value) field unset
        if field.oneof is not None:
            if field.oneof in oneofs_seen:
                raise DecodeError(
                    f"error parsing {wire_name!r}, oneof {message.full_name}.{field.oneof} is already set",
                    wire_name,
                )
            oneofs_seen[field.oneof] = field.name
        if field.repeated:
            if not isinstance(value, list):
                raise DecodeError(
                    f"invalid value for repeated field {field.json_name}: {_short(value)}", wire_name
                )
            result[field.name] = [_decode_value(field, item, wire_name) for item in value]
        else:
            result[field.name] = _decode_value(field, value, wire_name)
    return result


def _decode_value(field: Field, value: Any, wire_name: str) -> Any:
    # protojson names the field by its JSON name in value errors, whichever name was sent.
    wire_name = field.json_name
    kind = field.kind
    if kind == "string":
        if not isinstance(value, str):
            raise DecodeError(f"invalid value for string field {wire_name}: {_short(value)}", wire_name)
        return value
    if kind in ("int32", "int64"):
        return _decode_integer(kind, value, wire_name)
    if kind == "bool":
        if not isinstance(value, bool):
            raise DecodeError(f"invalid value for bool field {wire_name}: {_short(value)}", wire_name)
        return value
    if kind == "enum":
        return _decode_enum(field, value, wire_name)
    if kind == "timestamp":
        if not isinstance(value, str):
            raise DecodeError(f"invalid google.protobuf.Timestamp value {_short(value)}", wire_name)
        try:
            parse_timestamp(value)
        except ValueError as err:
            raise DecodeError(str(err), wire_name) from None
        return value
    if kind == "message":
        if not isinstance(value, dict):
            raise DecodeError(f"unexpected token {_short(value)}", wire_name)
        assert field.message is not None
        return _decode_message(field.message, value)
    if kind in ("struct", "opaque"):
        if not isinstance(value, dict):
            raise DecodeError(f"unexpected token {_short(value)}", wire_name)
        return value
    if kind == "value_map":
        if not isinstance(value, dict):
            raise DecodeError(f"unexpected token {_short(value)}", wire_name)
        return value
    if kind == "struct_map":
        if not isinstance(value, dict) or not all(isinstance(item, dict) for item in value.values()):
            raise DecodeError(f"unexpected token {_short(value)}", wire_name)
        return value
    if kind == "string_map":
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            raise DecodeError(f"invalid value for string map {wire_name}: {_short(value)}", wire_name)
        return value
    raise AssertionError(f"unhandled field kind {kind}")


def _decode_integer(kind: str, value: Any, wire_name: str) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip())
    ):
        number = int(value)
    bits = 31 if kind == "int32" else 63
    if number is None or not -(2**bits) <= number < 2**bits:
        raise DecodeError(f"invalid value for {kind} field {wire_name}: {_short(value)}", wire_name)
    return number


def _decode_enum(field: Field, value: Any, wire_name: str) -> str | int:
    assert field.enum is not None
    if isinstance(value, str):
        if value not in field.enum:
            raise DecodeError(f"invalid value for enum field {wire_name}: {_short(value)}", wire_name)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # protojson accepts enum numbers; keep the name when the number is known.
        for name, number in field.enum.items():
            if number == value:
                return name
        return value
    raise DecodeError(f"invalid value for enum field {wire_name}: {_short(value)}", wire_name)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
