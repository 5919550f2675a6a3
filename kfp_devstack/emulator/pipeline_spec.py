"""The parts of a compiled KFP v2 pipeline spec (IR) the emulator reads.

Parameter validation follows the server's ``validatePipelineJobInputs``
(docs/emulator.md §4.4): the type of each provided value is checked against
``root.inputDefinitions.parameters[*].parameterType``, a missing parameter that is
neither optional nor defaulted is an error, and so is any extra parameter.

Tasks are the root DAG's ``tasks``; the emulator runs them one after another in a
topological order of ``dependentTasks`` (plus the producers of their inputs). A task
whose component is itself a DAG runs as one opaque task (no sub-DAG execution).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

# The JSON type a runtime parameter value must have, per IR parameter type; integers
# and doubles both accept any JSON number, as the server checks only the Value kind.
_EXPECTED_JSON_TYPE: dict[str, str] = {
    "NUMBER_INTEGER": "number",
    "NUMBER_DOUBLE": "number",
    "STRING": "string",
    "BOOLEAN": "bool",
    "LIST": "list",
    "STRUCT": "struct",
}

_DEFAULT_OUTPUT_PARAMETER_VALUES: dict[str, Any] = {
    "NUMBER_INTEGER": 0,
    "NUMBER_DOUBLE": 0.0,
    "STRING": "",
    "BOOLEAN": False,
    "LIST": [],
    "STRUCT": {},
}


class PipelineSpecError(ValueError):
    """The document is not a KFP v2 pipeline spec the emulator can run."""


class UnknownTemplateFormat(PipelineSpecError):
    """Neither an Argo workflow nor a pipeline spec: no document has ``pipelineInfo``."""

    def __init__(self) -> None:
        super().__init__("unknown template format")


class ParameterError(ValueError):
    """Runtime parameters do not satisfy the spec (the server answers 400)."""


@dataclass(frozen=True)
class ParameterDefinition:
    name: str
    parameter_type: str
    is_optional: bool
    default: Any
    has_default: bool


@dataclass(frozen=True)
class OutputArtifact:
    name: str
    schema_title: str


@dataclass(frozen=True)
class InputArtifact:
    """An input artifact produced by an upstream task of the same DAG."""

    name: str
    producer_task: str
    output_key: str


@dataclass(frozen=True)
class TaskDefinition:
    key: str
    display_name: str
    dependencies: tuple[str, ...]
    output_artifacts: tuple[OutputArtifact, ...]
    output_parameters: Mapping[str, str]  # name -> parameter type
    input_artifacts: tuple[InputArtifact, ...]
    parameter_bindings: Mapping[str, Mapping[str, Any]]  # input name -> IR binding
    image: str

    def default_output_parameters(self) -> dict[str, Any]:
        return {
            name: _DEFAULT_OUTPUT_PARAMETER_VALUES.get(parameter_type, "")
            for name, parameter_type in self.output_parameters.items()
        }


class PipelineSpec:
    """A parsed pipeline spec; ``document`` is what the API returns as ``pipeline_spec``."""

    def __init__(self, spec: Mapping[str, Any], platform_spec: Mapping[str, Any] | None = None) -> None:
        if not isinstance(spec, Mapping):
            raise PipelineSpecError("pipeline spec must be an object")
        pipeline_info = spec.get("pipelineInfo")
        root = spec.get("root")
        if not isinstance(pipeline_info, Mapping) or not pipeline_info.get("name"):
            raise PipelineSpecError("pipeline spec is missing pipelineInfo.name")
        if not isinstance(root, Mapping):
            raise PipelineSpecError("pipeline spec is missing root")
        self.spec: dict[str, Any] = json.loads(json.dumps(spec))
        self.platform_spec: dict[str, Any] | None = (
            json.loads(json.dumps(platform_spec)) if platform_spec is not None else None
        )
        self.pipeline_name: str = str(pipeline_info["name"])
        self.parameters = _root_parameters(root)
        self.tasks = _root_tasks(self.spec, root)
        self.order = _topological_order(self.tasks)

    @classmethod
    def from_yaml(cls, text: str) -> PipelineSpec:
        """Parses a compiled pipeline file: the IR, optionally followed by a platform spec document."""
        try:
            documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except yaml.YAMLError as err:
            raise PipelineSpecError(f"invalid YAML: {err}") from None
        if not documents:
            raise PipelineSpecError("empty pipeline file")
        spec = documents[0]
        if isinstance(spec, Mapping) and spec.get("kind") == "Workflow":
            raise PipelineSpecError("Argo workflows (KFP v1 pipelines) are not supported by the emulator")
        if not any(isinstance(document, Mapping) and "pipelineInfo" in document for document in documents):
            raise UnknownTemplateFormat()
        platform = documents[1] if len(documents) > 1 else None
        return cls(spec, platform)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PipelineSpec:
        """Parses the ``pipeline_spec`` struct as the API carries it (see :meth:`document`)."""
        if "pipeline_spec" in document and "pipelineInfo" not in document:
            return cls(document["pipeline_spec"], document.get("platform_spec"))
        return cls(document)

    def document(self) -> dict[str, Any]:
        """The struct the API returns: the IR itself, or both documents when a platform spec exists."""
        if self.platform_spec is None:
            return self.spec
        return {"pipeline_spec": self.spec, "platform_spec": self.platform_spec}

    def validate_parameters(self, values: Mapping[str, Any]) -> None:
        for name in sorted(self.parameters):
            definition = self.parameters[name]
            if name not in values:
                if not definition.is_optional and not definition.has_default:
                    raise ParameterError(
                        f"parameter {name} is not optional, yet has neither default value "
                        "nor user provided value"
                    )
                continue
            expected = _EXPECTED_JSON_TYPE.get(definition.parameter_type)
            if expected is None:
                raise ParameterError(_unusable_type_message(name, definition.parameter_type))
            if _json_type(values[name]) != expected:
                raise ParameterError(_type_mismatch_message(name, expected))
        extra = [name for name in values if name not in self.parameters]
        if extra:
            raise ParameterError(f"parameter(s) provided are not required by pipeline: {', '.join(extra)}")

    def resolved_parameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Runtime values with the spec's defaults filled in, as the root driver records them."""
        resolved = {name: d.default for name, d in self.parameters.items() if d.has_default}
        resolved.update(values)
        return resolved

    def task_inputs(self, task: TaskDefinition, root_values: Mapping[str, Any]) -> dict[str, Any]:
        """A task's input parameters that can be known without running upstream tasks."""
        inputs: dict[str, Any] = {}
        for name, binding in task.parameter_bindings.items():
            if "componentInputParameter" in binding:
                source = binding["componentInputParameter"]
                if source in root_values:
                    inputs[name] = root_values[source]
            elif "runtimeValue" in binding:
                constant = binding["runtimeValue"].get("constant")
                if constant is not None:
                    inputs[name] = constant
        return inputs


def _type_mismatch_message(name: str, expected: str) -> str:
    # The server's wording differs for numbers (v2_template.go validatePipelineJobInputs).
    if expected == "number":
        return (
            f"input parameter {name} requires type double or integer, "
            "but the parameter value is not of number value type"
        )
    return (
        f"input parameter {name} requires type {expected}, "
        f"but the input parameter is not of {expected} value type"
    )


def _unusable_type_message(name: str, parameter_type: str) -> str:
    if parameter_type == "PARAMETER_TYPE_ENUM_UNSPECIFIED":
        return f"input parameter {name} has unspecified type"
    if parameter_type == "TASK_FINAL_STATUS":
        return f"input parameter {name} requires type TASK_FINAL_STATUS, which is invalid for root component"
    return f"input parameter {name} requires type unknown"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "struct"
    return "null"


def _root_parameters(root: Mapping[str, Any]) -> dict[str, ParameterDefinition]:
    definitions = (root.get("inputDefinitions") or {}).get("parameters") or {}
    parameters: dict[str, ParameterDefinition] = {}
    for name, definition in definitions.items():
        parameters[name] = ParameterDefinition(
            name=name,
            parameter_type=str(definition.get("parameterType", "PARAMETER_TYPE_ENUM_UNSPECIFIED")),
            is_optional=bool(definition.get("isOptional", False)),
            default=definition.get("defaultValue"),
            has_default="defaultValue" in definition,
        )
    return parameters


def _root_tasks(spec: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, TaskDefinition]:
    components = spec.get("components") or {}
    executors = ((spec.get("deploymentSpec") or {}).get("executors")) or {}
    tasks: dict[str, TaskDefinition] = {}
    for key, task in ((root.get("dag") or {}).get("tasks") or {}).items():
        component = components.get((task.get("componentRef") or {}).get("name"), {})
        outputs = component.get("outputDefinitions") or {}
        inputs = task.get("inputs") or {}
        executor = executors.get(component.get("executorLabel"), {})
        input_artifacts = tuple(
            InputArtifact(
                name,
                source["taskOutputArtifact"]["producerTask"],
                source["taskOutputArtifact"]["outputArtifactKey"],
            )
            for name, source in (inputs.get("artifacts") or {}).items()
            if "taskOutputArtifact" in source
        )
        producers = {artifact.producer_task for artifact in input_artifacts} | {
            binding["taskOutputParameter"]["producerTask"]
            for binding in (inputs.get("parameters") or {}).values()
            if "taskOutputParameter" in binding
        }
        tasks[key] = TaskDefinition(
            key=key,
            display_name=str((task.get("taskInfo") or {}).get("name") or key),
            dependencies=tuple(dict.fromkeys([*task.get("dependentTasks", []), *sorted(producers)])),
            output_artifacts=tuple(
                OutputArtifact(
                    name, str((definition.get("artifactType") or {}).get("schemaTitle", "system.Artifact"))
                )
                for name, definition in (outputs.get("artifacts") or {}).items()
            ),
            output_parameters={
                name: str(definition.get("parameterType", "STRING"))
                for name, definition in (outputs.get("parameters") or {}).items()
            },
            input_artifacts=input_artifacts,
            parameter_bindings=dict(inputs.get("parameters") or {}),
            image=str((executor.get("container") or {}).get("image", "")),
        )
    return tasks


def _topological_order(tasks: Mapping[str, TaskDefinition]) -> tuple[str, ...]:
    """Kahn's algorithm; ties keep the spec's order so runs are reproducible."""
    for task in tasks.values():
        unknown = [dependency for dependency in task.dependencies if dependency not in tasks]
        if unknown:
            raise PipelineSpecError(f"task {task.key} depends on unknown task(s) {', '.join(unknown)}")
    remaining = dict.fromkeys(tasks)
    done: list[str] = []
    while remaining:
        ready = [key for key in remaining if all(dep in done for dep in tasks[key].dependencies)]
        if not ready:
            raise PipelineSpecError(f"the tasks {', '.join(remaining)} form a dependency cycle")
        done.append(ready[0])
        del remaining[ready[0]]
    return tuple(done)
