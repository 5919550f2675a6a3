"""Runtime parameter values: where they come from and what type KFP expects.

Values in a Run are strings (``value: '100'``), as in the reference operator,
whose KFP v1 API took only strings. The v2 API checks each value against the
type the pipeline declares (``root.inputDefinitions.parameters[*].parameterType``)
and rejects ``"100"`` for an integer, so values are converted to the declared
type here, with an error that names the parameter when they cannot be.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconcilers.api.run import RunSpec

_INTEGER = re.compile(r"^[+-]?\d+$")
_BOOLEANS = {"true": True, "false": False}


# Reasons a valueFrom reference cannot be resolved yet.
RUN_CONFIGURATION_NOT_FOUND = "RunConfigurationNotFound"
ARTIFACT_NOT_AVAILABLE = "ArtifactNotAvailable"


class InvalidParameterValue(ValueError):
    """A literal value cannot be converted to the type the pipeline declares."""


@dataclass(frozen=True)
class MissingDependency:
    """A ``valueFrom`` reference that cannot be resolved yet."""

    reason: str  # RunConfigurationNotFound | ArtifactNotAvailable
    message: str


def dependency_snapshot(
    spec: RunSpec, run_configurations: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """``status.dependencies.runConfigurations``: for each referenced RunConfiguration, its latest
    succeeded run with only the referenced artifacts; ``{}`` for one that does not exist."""
    referenced: dict[str, set[str]] = {}
    for parameter in spec.runtime_parameters:
        if parameter.value_from is not None:
            referenced.setdefault(parameter.value_from.name, set()).add(parameter.value_from.output_artifact)
    snapshot: dict[str, dict[str, Any]] = {}
    for name in sorted(referenced):
        rc = run_configurations.get(name)
        succeeded = _latest_succeeded(rc)
        entry: dict[str, Any] = {}
        if succeeded.get("providerId"):
            entry["providerId"] = succeeded["providerId"]
        artifacts = [a for a in succeeded.get("artifacts") or () if a.get("name") in referenced[name]]
        if artifacts:
            entry["artifacts"] = [{"name": a["name"], "location": a["location"]} for a in artifacts]
        snapshot[name] = entry
    return snapshot


def resolve_values(
    spec: RunSpec, run_configurations: Mapping[str, Mapping[str, Any] | None]
) -> tuple[dict[str, str], list[MissingDependency]]:
    """The string value of every parameter, and what is missing for those that cannot be resolved."""
    values: dict[str, str] = {}
    missing: list[MissingDependency] = []
    for parameter in spec.runtime_parameters:
        ref = parameter.value_from
        if ref is None:
            values[parameter.name] = parameter.value or ""
            continue
        rc = run_configurations.get(ref.name)
        if rc is None:
            missing.append(
                MissingDependency(
                    RUN_CONFIGURATION_NOT_FOUND,
                    f"parameter {parameter.name}: RunConfiguration {ref.name} does not exist",
                )
            )
            continue
        succeeded = _latest_succeeded(rc)
        location = next(
            (
                a.get("location")
                for a in succeeded.get("artifacts") or ()
                if a.get("name") == ref.output_artifact
            ),
            None,
        )
        if location is None:
            why = (
                f"has no artifact {ref.output_artifact} in its latest succeeded run"
                if succeeded
                else "has no succeeded run yet"
            )
            missing.append(
                MissingDependency(
                    ARTIFACT_NOT_AVAILABLE, f"parameter {parameter.name}: RunConfiguration {ref.name} {why}"
                )
            )
            continue
        values[parameter.name] = location
    return values, missing


def _latest_succeeded(rc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if rc is None:
        return {}
    return ((rc.get("status") or {}).get("latestRuns") or {}).get("succeeded") or {}


def declared_parameter_types(pipeline_spec: Mapping[str, Any] | None) -> dict[str, str]:
    """``{name: parameterType}`` from a compiled v2 pipeline spec; empty for v1 (Argo) pipelines."""
    if not pipeline_spec:
        return {}
    # A spec uploaded with a platform spec is stored as {"pipeline_spec": …, "platform_spec": …}.
    spec = pipeline_spec.get("pipeline_spec", pipeline_spec)
    parameters = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {name: definition.get("parameterType", "") for name, definition in parameters.items()}


def convert_values(values: Mapping[str, str], declared: Mapping[str, str]) -> dict[str, Any]:
    """Converts each value to its declared type; undeclared parameters are passed on as strings
    (KFP rejects them with its own message)."""
    return {name: convert_value(name, value, declared.get(name, "STRING")) for name, value in values.items()}


def convert_value(name: str, value: str, parameter_type: str) -> Any:
    match parameter_type:
        case "NUMBER_INTEGER":
            if not _INTEGER.match(value.strip()):
                raise InvalidParameterValue(f"parameter {name}: {value!r} is not an integer")
            return int(value)
        case "NUMBER_DOUBLE":
            try:
                number = float(value)
            except ValueError:
                raise InvalidParameterValue(f"parameter {name}: {value!r} is not a number") from None
            if not math.isfinite(number):
                raise InvalidParameterValue(f"parameter {name}: {value!r} is not a finite number")
            return number
        case "BOOLEAN":
            try:
                return _BOOLEANS[value.strip().lower()]
            except KeyError:
                raise InvalidParameterValue(f"parameter {name}: {value!r} is not true or false") from None
        case "LIST" | "STRUCT":
            expected, kind = (list, "a JSON list") if parameter_type == "LIST" else (dict, "a JSON object")
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, expected):
                raise InvalidParameterValue(f"parameter {name}: {value!r} is not {kind}")
            return parsed
        case _:
            return value
