"""Filtering, sorting and pagination with the KFP API server's semantics (docs/emulator.md §5).

* ``filter`` is a JSON ``Filter`` that the server URL-unescapes a second time, so a
  literal ``+`` becomes a space and a stray ``%`` is an error. All predicates are
  ANDed. String comparisons are case-insensitive (MySQL's default collation; newer
  servers compare ``LOWER()`` explicitly), ``IS_SUBSTRING`` is ``LIKE '%v%'`` without
  escaping (so ``%`` and ``_`` are wildcards), timestamps compare as Unix seconds.
* Keys are the resource's ``APIToModelFieldMap`` (snake_case API names plus legacy
  aliases); anything else is a 400.
* ``sort_by`` is ``field``, ``field asc`` or ``field desc``; the default is
  ``created_at`` ascending, always with the UUID as a tie-break in the same direction.
* ``page_size`` 0 means 20, above 200 is capped, negative is a 400.
* ``next_page_token`` is base64 of a JSON cursor naming the first row of the next page
  and carrying the sort and filter; a token is only valid with the same sort and
  filter, or with both left empty. ``total_size`` counts every match.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kfp_devstack.emulator.errors import ApiError, invalid_input, invalid_input_with_cause
from kfp_devstack.emulator.models import Run, RunState
from kfp_devstack.emulator.request_decoding import FILTER, decode_json_text
from kfp_devstack.emulator.timestamps import parse_timestamp

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200

_GROUP_BY_OPERATION = {
    "EQUALS": "EQ",
    "NOT_EQUALS": "NEQ",
    "GREATER_THAN": "GT",
    "GREATER_THAN_EQUALS": "GTE",
    "LESS_THAN": "LT",
    "LESS_THAN_EQUALS": "LTE",
    "IN": "IN",
    "IS_SUBSTRING": "SUBSTRING",
}
_OPERATION_BY_GROUP = {group: operation for operation, group in _GROUP_BY_OPERATION.items()}
_SCALAR_OPERATIONS = frozenset(_GROUP_BY_OPERATION) - {"IN", "IS_SUBSTRING"}

FieldValue = int | str


@dataclass(frozen=True)
class Listable:
    """A listable resource: its API keys, the model fields they map to, and how to read them."""

    type_name: str  # the server's model type, named in some errors
    model_name: str  # the table name, used as the field prefix in page tokens
    api_fields: Mapping[str, str]  # API key (including legacy aliases) -> model field
    getters: Mapping[str, Callable[[Any], FieldValue]]  # model field -> value
    key_field: str = "UUID"
    default_sort_field: str = "CreatedAtInSec"
    tags: Callable[[Any], Mapping[str, str]] | None = None  # pipelines filter on tags.<k>
    metric_sort: bool = False  # runs can be sorted on metric:<name>

    def key_of(self, item: Any) -> str:
        return str(self.getters[self.key_field](item))


@dataclass(frozen=True)
class Condition:
    operation: str
    field: str  # a model field, or "tags.<k>"
    value: FieldValue | tuple[FieldValue, ...]


@dataclass(frozen=True)
class ListQuery:
    listable: Listable
    conditions: tuple[Condition, ...]
    sort_field: str
    descending: bool
    page_size: int
    cursor: tuple[Any, str] | None = None

    def same_criteria(self, other: ListQuery) -> bool:
        """The server's check: a token's filter went through JSON, so its int64 values came back as
        float64, and ``reflect.DeepEqual`` never finds them equal to the request's: a filter with a
        number or timestamp never matches its own token (docs/emulator.md §5)."""
        return (
            self.sort_field == other.sort_field
            and self.descending == other.descending
            and not _has_number(self.conditions)
            and _filter_json(self.listable, self.conditions) == _filter_json(other.listable, other.conditions)
        )


def _has_number(conditions: Sequence[Condition]) -> bool:
    def numeric(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return any(
        any(numeric(v) for v in c.value) if isinstance(c.value, tuple) else numeric(c.value)
        for c in conditions
    )


@dataclass
class ListResult:
    items: list[Any] = field(default_factory=list)
    total_size: int = 0
    next_page_token: str = ""


def parse_list_request(
    listable: Listable, *, page_token: str, page_size: int, sort_by: str, filter_text: str
) -> ListQuery:
    """Validates list parameters as the server's ``validatedListOptions`` does."""
    try:
        return _parse(listable, page_token, page_size, sort_by, filter_text)
    except ApiError as err:
        raise err.wrap("Failed to create list options") from None


def run_list(query: ListQuery, items: Iterable[T]) -> ListResult:
    listable = query.listable
    matching = [item for item in items if all(_matches(listable, c, item) for c in query.conditions)]
    matching.sort(key=lambda item: _sort_key(listable, query.sort_field, item), reverse=query.descending)
    start = 0
    if query.cursor is not None:
        cursor = (_normalise(query.cursor[0]), query.cursor[1])
        for index, item in enumerate(matching):
            position = _sort_key(listable, query.sort_field, item)
            if (position <= cursor) if query.descending else (position >= cursor):
                start = index
                break
        else:
            start = len(matching)
    page = matching[start : start + query.page_size]
    next_token = ""
    if start + query.page_size < len(matching):
        next_token = _encode_token(query, matching[start + query.page_size])
    return ListResult(items=page, total_size=len(matching), next_page_token=next_token)


# --- parsing ------------------------------------------------------------------------------


def _parse(listable: Listable, page_token: str, page_size: int, sort_by: str, filter_text: str) -> ListQuery:
    if not page_token:
        return _fresh_query(listable, page_size, sort_by, filter_text)
    size = _validate_page_size(page_size)
    from_token = _decode_token(listable, page_token, size)
    if sort_by or filter_text:
        requested = _fresh_query(listable, page_size, sort_by, filter_text)
        if not from_token.same_criteria(requested):
            raise invalid_input(
                "page token does not match the supplied sort by and/or filtering criteria. Either specify "
                "the same criteria or leave the latter empty if page token is specified."
            )
    return from_token


def _fresh_query(listable: Listable, page_size: int, sort_by: str, filter_text: str) -> ListQuery:
    predicates = _parse_filter(filter_text)
    size = _validate_page_size(page_size)
    sort_field, descending = _parse_sort(listable, sort_by)
    conditions = tuple(_to_condition(listable, predicate) for predicate in predicates)
    return ListQuery(listable, conditions, sort_field, descending, size)


def _validate_page_size(page_size: int) -> int:
    if page_size < 0:
        raise invalid_input(f"The page size should be greater than 0. Got {page_size}")
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


def _parse_sort(listable: Listable, sort_by: str) -> tuple[str, bool]:
    words = sort_by.lower().split()
    if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
        raise invalid_input(
            f'Received invalid sort by format "{sort_by}". Supported format: "field_name", '
            '"field_name desc", or "field_name asc"'
        )
    if not words:
        return listable.default_sort_field, False
    name = words[0]
    model_field = listable.api_fields.get(name)
    if model_field is None and listable.metric_sort and name.startswith("metric:"):
        model_field = name
    if model_field is None:
        raise invalid_input(f'Invalid sorting field: "{name}" on listable type {listable.type_name}')
    return model_field, len(words) == 2 and words[1] == "desc"


def _parse_filter(filter_text: str) -> list[dict[str, Any]]:
    if not filter_text:
        return []
    try:
        # The server unescapes the already-decoded query value once more (docs/emulator.md §5).
        decoded = _go_query_unescape(filter_text)
        parsed = decode_json_text(FILTER, decoded)
    except (ValueError, ApiError) as err:
        cause = err.message if isinstance(err, ApiError) else str(err)
        raise invalid_input(f"failed to parse valid filter from {json.dumps(filter_text)}: {cause}") from None
    return list(parsed.get("predicates", []))


def _go_query_unescape(text: str) -> str:
    """Go's ``url.QueryUnescape``: ``+`` is a space and every ``%`` must start a valid escape."""
    out = bytearray()
    index = 0
    raw = text.encode("utf-8")
    while index < len(raw):
        char = raw[index]
        if char == ord("%"):
            escape = raw[index + 1 : index + 3]
            if len(escape) < 2 or not all(c in b"0123456789abcdefABCDEF" for c in escape):
                shown = raw[index : index + 3].decode("utf-8", errors="replace")
                raise ValueError(f'invalid URL escape "{shown}"')
            out.append(int(escape, 16))
            index += 3
        elif char == ord("+"):
            out.append(ord(" "))
            index += 1
        else:
            out.append(char)
            index += 1
    return out.decode("utf-8", errors="replace")


# The Go type names the server's messages print for each value kind.
_GO_TYPE = {
    "int_value": "int32",
    "long_value": "int64",
    "string_value": "string",
    "timestamp_value": "int64",
    "int_values": "[]int32",
    "long_values": "[]int64",
    "string_values": "[]string",
}


def _to_condition(listable: Listable, predicate: Mapping[str, Any]) -> Condition:
    operation = predicate.get("operation", "OPERATION_UNSPECIFIED")
    if operation not in _GROUP_BY_OPERATION:
        message = f"UnknownApiVersionError: Error using Filter.Predicate.Operation with {operation}"
        raise invalid_input(message)
    value_kind = next((kind for kind in _GO_TYPE if kind in predicate), None)
    if value_kind is None:
        raise invalid_input("UnknownApiVersionError: Error using Filter.Predicate.Value with <nil>")
    value = _predicate_value(value_kind, predicate[value_kind])
    key = predicate.get("key", "")
    if not key:
        shown = _go_repr(value)
        raise invalid_input(f"Predicate key cannot be empty for operation {operation} and value {shown}")
    go_type = _GO_TYPE[value_kind]
    is_list = isinstance(value, tuple)
    if operation == "IN" and not is_list:
        raise invalid_input(f"cannot use IN operator with scalar type {go_type}")
    if operation in _SCALAR_OPERATIONS and is_list:
        raise invalid_input(f"cannot use scalar operator {operation} on array type {go_type}")
    if operation == "IS_SUBSTRING" and value_kind != "string_value":
        # The server passes the arguments in the wrong order to its format string
        # ("value type %T with operator %v"), so the message names the operation's
        # type and the value; kept as it is.
        raise invalid_input(f"cannot use non string value type string with operator {_go_repr(value)}")
    return Condition(operation, _model_field(listable, key, operation), value)


def _predicate_value(kind: str, raw: Any) -> FieldValue | tuple[FieldValue, ...]:
    if kind == "timestamp_value":
        return parse_timestamp(raw)
    if kind.endswith("_values"):
        return tuple(raw.get("values", []))
    return raw


def _model_field(listable: Listable, key: str, operation: str) -> str:
    if listable.tags is not None and key.startswith("tags."):
        if operation != "EQUALS":
            raise invalid_input(f"only EQUALS is supported for tag filters, got {operation} on {key!r}")
        return key
    model_field = listable.api_fields.get(key)
    if model_field is None:
        raise invalid_input(f"no support for filtering on unrecognized field {json.dumps(key)}")
    return model_field


def _go_repr(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + " ".join(str(item) for item in value) + "]"
    return str(value)


# --- matching and ordering --------------------------------------------------------------------


def _field_value(listable: Listable, model_field: str, item: Any) -> FieldValue:
    if model_field.startswith("tags.") and listable.tags is not None:
        return listable.tags(item).get(model_field[len("tags.") :], "")
    getter = listable.getters.get(model_field)
    return getter(item) if getter is not None else ""


def _matches(listable: Listable, condition: Condition, item: Any) -> bool:
    actual = _field_value(listable, condition.field, item)
    expected = condition.value
    operation = condition.operation
    if operation == "IN":
        assert isinstance(expected, tuple)
        return any(_compare(actual, candidate) == 0 for candidate in expected)
    assert not isinstance(expected, tuple)
    if operation == "IS_SUBSTRING":
        return _like(str(actual), f"%{expected}%")
    order = _compare(actual, expected)
    return {
        "EQUALS": order == 0,
        "NOT_EQUALS": order != 0,
        "GREATER_THAN": order > 0,
        "GREATER_THAN_EQUALS": order >= 0,
        "LESS_THAN": order < 0,
        "LESS_THAN_EQUALS": order <= 0,
    }[operation]


def _compare(actual: FieldValue, expected: FieldValue) -> int:
    """Compares as MySQL would: numbers numerically, strings without regard to case."""
    if isinstance(actual, int) and not isinstance(expected, int):
        try:
            expected = float(expected)  # MySQL converts a string operand of a numeric comparison
        except ValueError:
            actual = str(actual)
    if isinstance(actual, str) or isinstance(expected, str):
        left, right = str(actual).lower(), str(expected).lower()
    else:
        left, right = actual, expected  # type: ignore[assignment]
    return (left > right) - (left < right)


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.IGNORECASE | re.DOTALL) is not None


def _normalise(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sort_key(listable: Listable, sort_field: str, item: Any) -> tuple[Any, str]:
    if sort_field.startswith("metric:"):
        return (0, listable.key_of(item))  # runs carry no metrics in the emulator
    return (_normalise(_field_value(listable, sort_field, item)), listable.key_of(item))


# --- page tokens -----------------------------------------------------------------------------


def _filter_json(listable: Listable, conditions: Sequence[Condition]) -> dict[str, Any] | None:
    """The server's serialised filter: operation groups of prefixed model fields to value lists."""
    if not conditions:
        return None
    groups: dict[str, dict[str, list[Any]]] = {group: {} for group in _OPERATION_BY_GROUP}
    for condition in conditions:
        value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
        key = f"{listable.model_name}.{condition.field}"
        groups[_GROUP_BY_OPERATION[condition.operation]].setdefault(key, []).append(value)
    return groups


def _encode_token(query: ListQuery, first_of_next_page: Any) -> str:
    listable = query.listable
    sort_value = (
        0
        if query.sort_field.startswith("metric:")
        else _field_value(listable, query.sort_field, first_of_next_page)
    )
    token = {
        "SortByFieldName": query.sort_field,
        "SortByFieldValue": sort_value,
        "SortByFieldPrefix": f"{listable.model_name}.",
        "KeyFieldName": listable.key_field,
        "KeyFieldValue": listable.key_of(first_of_next_page),
        "KeyFieldPrefix": f"{listable.model_name}.",
        "IsDesc": query.descending,
        "ModelName": listable.model_name,
        "Filter": _filter_json(listable, query.conditions),
    }
    return base64.b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def _decode_token(listable: Listable, page_token: str, page_size: int) -> ListQuery:
    try:
        token = json.loads(base64.b64decode(page_token, validate=True))
        if not isinstance(token, dict):
            raise ValueError("token is not an object")
        sort_field = str(token["SortByFieldName"])
        known_fields = set(listable.getters)
        if token.get("ModelName") != listable.model_name or not (
            sort_field in known_fields or sort_field.startswith("metric:")
        ):
            raise ValueError("token was issued for another listing")
        conditions = _conditions_from_filter_json(listable, token.get("Filter"))
        cursor = (token["SortByFieldValue"], str(token["KeyFieldValue"]))
        descending = bool(token.get("IsDesc", False))
    except binascii.Error:
        raise invalid_input_with_cause(
            "Invalid page token", f"illegal base64 data at input byte {_bad_base64_byte(page_token)}"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise invalid_input_with_cause("Invalid page token", str(err)) from None
    return ListQuery(listable, conditions, sort_field, descending, page_size, cursor)


def _bad_base64_byte(text: str) -> int:
    """Where Go's base64 decoder gives up: the first byte outside the alphabet, else the padding."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for index, char in enumerate(text):
        if char not in alphabet and not (char == "=" and index >= len(text.rstrip("=")) and index >= 2):
            return index
    return len(text) - len(text) % 4


def _conditions_from_filter_json(listable: Listable, groups: Any) -> tuple[Condition, ...]:
    if not groups:
        return ()
    prefix = f"{listable.model_name}."
    conditions: list[Condition] = []
    for group, fields in groups.items():
        operation = _OPERATION_BY_GROUP[group]
        for key, values in (fields or {}).items():
            if not key.startswith(prefix):
                raise ValueError(f"unexpected filter key {key}")
            for value in values:
                restored = tuple(value) if isinstance(value, list) else value
                conditions.append(Condition(operation, key[len(prefix) :], restored))
    return tuple(conditions)


# --- the listable resources -----------------------------------------------------------------

# KFP v1 conditions, kept in the runs table's Conditions column (legacy key "status").
_V1_CONDITION = {
    RunState.PENDING: "Pending",
    RunState.RUNNING: "Running",
    RunState.SUCCEEDED: "Succeeded",
    RunState.FAILED: "Failed",
    RunState.CANCELING: "Terminating",
}


def _run_details_text(run: Run) -> str:
    return json.dumps({"state": run.state, "created_at": run.created_at, "finished_at": run.finished_at})


RUNS = Listable(
    type_name="Run",
    model_name="runs",
    api_fields={
        "run_id": "UUID",
        "id": "UUID",
        "display_name": "DisplayName",
        "name": "DisplayName",
        "description": "Description",
        "created_at": "CreatedAtInSec",
        "scheduled_at": "ScheduledAtInSec",
        "finished_at": "FinishedAtInSec",
        "state": "State",
        "status": "Conditions",
        "storage_state": "StorageState",
        "experiment_id": "ExperimentId",
        "namespace": "Namespace",
        "recurring_run_id": "RecurringRunId",
        "state_history": "StateHistory",
        "runtime_details": "RuntimeDetails",
    },
    getters={
        "UUID": lambda run: run.run_id,
        "DisplayName": lambda run: run.display_name,
        "Description": lambda run: run.description,
        "CreatedAtInSec": lambda run: run.created_at,
        "ScheduledAtInSec": lambda run: run.scheduled_at,
        "FinishedAtInSec": lambda run: run.finished_at,
        "State": lambda run: run.state,
        "Conditions": lambda run: _V1_CONDITION.get(run.state, ""),
        "StorageState": lambda run: run.storage_state,
        "ExperimentId": lambda run: run.experiment_id,
        "Namespace": lambda run: run.namespace,
        "RecurringRunId": lambda run: "",
        "StateHistory": lambda run: json.dumps([change.to_record() for change in run.state_history]),
        "RuntimeDetails": _run_details_text,
    },
    metric_sort=True,
)

EXPERIMENTS = Listable(
    type_name="Experiment",
    model_name="experiments",
    api_fields={
        "experiment_id": "UUID",
        "id": "UUID",
        "display_name": "Name",
        "name": "Name",
        "description": "Description",
        "created_at": "CreatedAtInSec",
        "last_run_created_at": "LastRunCreatedAtInSec",
        "namespace": "Namespace",
        "storage_state": "StorageState",
    },
    getters={
        "UUID": lambda experiment: experiment.experiment_id,
        "Name": lambda experiment: experiment.display_name,
        "Description": lambda experiment: experiment.description,
        "CreatedAtInSec": lambda experiment: experiment.created_at,
        "LastRunCreatedAtInSec": lambda experiment: experiment.last_run_created_at,
        "Namespace": lambda experiment: experiment.namespace,
        "StorageState": lambda experiment: experiment.storage_state,
    },
)

PIPELINES = Listable(
    type_name="Pipeline",
    model_name="pipelines",
    api_fields={
        "pipeline_id": "UUID",
        "id": "UUID",
        "name": "Name",
        "display_name": "DisplayName",
        "description": "Description",
        "created_at": "CreatedAtInSec",
        "namespace": "Namespace",
    },
    getters={
        "UUID": lambda pipeline: pipeline.pipeline_id,
        "Name": lambda pipeline: pipeline.name,
        "DisplayName": lambda pipeline: pipeline.display_name,
        "Description": lambda pipeline: pipeline.description,
        "CreatedAtInSec": lambda pipeline: pipeline.created_at,
        "Namespace": lambda pipeline: pipeline.namespace,
    },
    tags=lambda pipeline: pipeline.tags,
)

PIPELINE_VERSIONS = Listable(
    type_name="PipelineVersion",
    model_name="pipeline_versions",
    api_fields={
        "pipeline_version_id": "UUID",
        "id": "UUID",
        "name": "Name",
        "display_name": "DisplayName",
        "description": "Description",
        "created_at": "CreatedAtInSec",
        "status": "Status",
        "pipeline_spec": "PipelineSpec",
    },
    getters={
        "UUID": lambda version: version.pipeline_version_id,
        "Name": lambda version: version.name,
        "DisplayName": lambda version: version.display_name,
        "Description": lambda version: version.description,
        "CreatedAtInSec": lambda version: version.created_at,
        "Status": lambda version: "READY",
        # The server compares the stored spec text; the emulator only has the spec's digest at hand.
        "PipelineSpec": lambda version: version.spec_digest,
    },
)
