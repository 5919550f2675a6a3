"""Writes ML Metadata the way the KFP v2 driver and launcher do (docs/emulator.md §10).

* Contexts: ``system.Pipeline`` named by ``pipelineInfo.name`` and ``system.PipelineRun``
  named by the run id (custom properties ``namespace``, ``resource_name``,
  ``pipeline_root``, ``store_session_info``), the pipeline context its parent.
* The root driver's ``system.DAGExecution`` named ``run/<run_id>`` (the only named
  execution), with empty ``task_name``/``display_name`` and the runtime ``inputs``.
* Per task an unnamed ``system.ContainerExecution`` with ``task_name`` (task key),
  ``display_name`` (``taskInfo.name``), ``parent_dag_id`` and ``inputs``, written RUNNING
  with INPUT events for upstream artifacts, then COMPLETE with an OUTPUT event per
  artifact (one path step keyed by the output name) or FAILED with only the
  ``executor-logs`` artifact, which every container task publishes.
* Artifacts are LIVE, typed by the output's schema title, unnamed, with URI
  ``<root>/<pipeline>/<run_id>/<task>/<uuid>/<output>`` and custom properties
  ``display_name`` (the output name), ``store_session_info`` and the artifact metadata
  converted as the launcher converts it: bool -> int_value, number -> double_value,
  string -> string_value, list -> struct_value {"list": ...}, object -> struct_value
  {"struct": ...}.

Every execution is associated with both contexts and every artifact attributed to both.
Local roots (a path or ``file://``) get real files so an artifact's URI exists.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from google.protobuf import struct_pb2
from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2 as mlmd

from kfp_devstack.emulator.mlmd_store import EmbeddedMetadataStore
from kfp_devstack.emulator.pipeline_spec import TaskDefinition

PIPELINE_CONTEXT = "system.Pipeline"
RUN_CONTEXT = "system.PipelineRun"
DAG_EXECUTION = "system.DAGExecution"
CONTAINER_EXECUTION = "system.ContainerExecution"
LOGS_OUTPUT = "executor-logs"
LOGS_TYPE = "system.Artifact"


@dataclass(frozen=True)
class RunRecords:
    pipeline_context_id: int
    run_context_id: int
    root_execution_id: int


@dataclass(frozen=True)
class TaskRun:
    """Where a task's records go and what it is called on the (emulated) cluster."""

    records: RunRecords
    run_id: str
    pipeline_name: str
    pipeline_root: str
    namespace: str
    pod_name: str


@dataclass(frozen=True)
class OutputArtifact:
    output: str
    schema_title: str
    metadata: Mapping[str, Any]


class MetadataWriter:
    def __init__(self, store: EmbeddedMetadataStore) -> None:
        self._store = store
        self._type_ids: dict[tuple[str, str], int] = {}
        self._types_lock = threading.Lock()

    # --- the root driver ----------------------------------------------------------------------

    def open_run(
        self,
        *,
        run_id: str,
        pipeline_name: str,
        pipeline_root: str,
        namespace: str,
        parameters: Mapping[str, Any],
        task_count: int,
    ) -> RunRecords:
        """Creates (or finds, after a restart) the run's contexts and root DAG execution."""
        pipeline_context = self._get_or_put_context(PIPELINE_CONTEXT, pipeline_name, {})
        run_context = self._get_or_put_context(
            RUN_CONTEXT,
            run_id,
            {
                "namespace": _string(namespace),
                "resource_name": _string("run-resource"),
                "pipeline_root": _string(f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}"),
                "store_session_info": _string(_session_info(pipeline_root)),
            },
        )
        with contextlib.suppress(mlmd_errors.AlreadyExistsError):  # already linked before a restart
            self._store.put_parent_contexts(
                [mlmd.ParentContext(child_id=run_context.id, parent_id=pipeline_context.id)]
            )
        root_name = f"run/{run_id}"
        root = self._store.get_execution_by_type_and_name(DAG_EXECUTION, root_name)
        if root is None:
            execution = mlmd.Execution(
                type_id=self._type_id("execution", DAG_EXECUTION),
                name=root_name,
                last_known_state=mlmd.Execution.RUNNING,
            )
            _set(execution.custom_properties, "task_name", _string(""))
            _set(execution.custom_properties, "display_name", _string(""))
            _set(execution.custom_properties, "inputs", _struct(dict(parameters)))
            _set(execution.custom_properties, "total_dag_tasks", _int(task_count))
            root_id, _, _ = self._store.put_execution(
                execution, [], _context_refs(pipeline_context.id, run_context.id), force_reuse_context=True
            )
        else:
            root_id = root.id
        return RunRecords(pipeline_context.id, run_context.id, root_id)

    def set_run_state(self, records: RunRecords, succeeded: bool | None) -> None:
        """Marks the root DAG execution COMPLETE / FAILED, or RUNNING again (``None``) on retry."""
        states = {None: mlmd.Execution.RUNNING, True: mlmd.Execution.COMPLETE, False: mlmd.Execution.FAILED}
        [execution] = self._store.get_executions_by_id([records.root_execution_id])
        execution.last_known_state = states[succeeded]
        self._store.put_executions([execution])

    # --- a task's driver and launcher ---------------------------------------------------------

    def start_task(
        self,
        run: TaskRun,
        task: TaskDefinition,
        inputs: Mapping[str, Any],
        input_artifact_ids: Sequence[tuple[str, int]],
    ) -> int:
        """The driver: a RUNNING container execution with INPUT events; returns its id."""
        execution = mlmd.Execution(
            type_id=self._type_id("execution", CONTAINER_EXECUTION),
            last_known_state=mlmd.Execution.RUNNING,
        )
        properties = execution.custom_properties
        _set(properties, "task_name", _string(task.key))
        _set(properties, "display_name", _string(task.display_name))
        _set(properties, "parent_dag_id", _int(run.records.root_execution_id))
        _set(properties, "inputs", _struct(dict(inputs)))
        _set(properties, "image", _string(task.image))
        _set(properties, "namespace", _string(run.namespace))
        _set(properties, "pod_name", _string(run.pod_name))
        _set(properties, "pod_uid", _string(str(uuid.uuid4())))
        artifacts = {a.id: a for a in self._store.get_artifacts_by_id([aid for _, aid in input_artifact_ids])}
        artifact_and_events = [
            (artifact_copy(artifacts[artifact_id]), _event(mlmd.Event.INPUT, name))
            for name, artifact_id in input_artifact_ids
            if artifact_id in artifacts
        ]
        execution_id, _, _ = self._store.put_execution(
            execution,
            artifact_and_events,
            _context_refs(run.records.pipeline_context_id, run.records.run_context_id),
            force_reuse_context=True,
        )
        return execution_id

    def finish_task(
        self,
        run: TaskRun,
        task: TaskDefinition,
        execution_id: int,
        *,
        succeeded: bool,
        outputs: Sequence[OutputArtifact],
        log_text: str,
    ) -> None:
        """The launcher: publishes outputs (only the logs on failure) and the final state."""
        [execution] = self._store.get_executions_by_id([execution_id])
        if succeeded:
            execution.last_known_state = mlmd.Execution.COMPLETE
            _set(execution.custom_properties, "outputs", _struct(task.default_output_parameters()))
            published = list(outputs)
        else:
            execution.last_known_state = mlmd.Execution.FAILED
            published = []
        published.append(OutputArtifact(LOGS_OUTPUT, LOGS_TYPE, {}))
        artifact_and_events = []
        for output in published:
            uri = _artifact_uri(run, task.key, output.output)
            is_log = output.output == LOGS_OUTPUT
            _materialise(uri, log_text if is_log else json.dumps(dict(output.metadata), indent=2))
            artifact_and_events.append(
                (
                    self._artifact(output, uri, run.pipeline_root),
                    _event(mlmd.Event.OUTPUT, output.output),
                )
            )
        self._store.put_execution(
            execution,
            artifact_and_events,
            _context_refs(run.records.pipeline_context_id, run.records.run_context_id),
            force_reuse_context=True,
        )

    def output_artifact_ids(self, execution_id: int, output: str) -> list[int]:
        """The artifacts an execution published under ``output``, oldest first."""
        events = self._store.get_events_by_execution_ids([execution_id])
        return sorted(
            event.artifact_id
            for event in events
            if event.type == mlmd.Event.OUTPUT and event.path.steps and event.path.steps[0].key == output
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _artifact(self, output: OutputArtifact, uri: str, pipeline_root: str) -> mlmd.Artifact:
        artifact = mlmd.Artifact(
            type_id=self._type_id("artifact", output.schema_title), uri=uri, state=mlmd.Artifact.LIVE
        )
        for key, value in output.metadata.items():
            converted = launcher_value(value)
            if converted is not None and key != "_kfp_workspace":
                _set(artifact.custom_properties, key, converted)
        _set(artifact.custom_properties, "display_name", _string(output.output))
        _set(artifact.custom_properties, "store_session_info", _string(_session_info(pipeline_root)))
        return artifact

    def _get_or_put_context(
        self, type_name: str, name: str, properties: Mapping[str, mlmd.Value]
    ) -> mlmd.Context:
        existing = self._store.get_context_by_type_and_name(type_name, name)
        if existing is not None:
            return existing
        context = mlmd.Context(type_id=self._type_id("context", type_name), name=name)
        for key, value in properties.items():
            _set(context.custom_properties, key, value)
        try:
            [context_id] = self._store.put_contexts([context])
        except mlmd_errors.AlreadyExistsError:
            found = self._store.get_context_by_type_and_name(type_name, name)
            assert found is not None
            return found
        context.id = context_id
        return context

    def _type_id(self, kind: str, name: str) -> int:
        with self._types_lock:
            cached = self._type_ids.get((kind, name))
            if cached is not None:
                return cached
            if kind == "context":
                type_id = self._store.put_context_type(mlmd.ContextType(name=name))
            elif kind == "execution":
                type_id = self._store.put_execution_type(mlmd.ExecutionType(name=name))
            else:
                type_id = self._store.put_artifact_type(mlmd.ArtifactType(name=name))
            self._type_ids[(kind, name)] = type_id
            return type_id


def launcher_value(value: Any) -> mlmd.Value | None:
    """Converts artifact metadata as the launcher's ``StructValueToMLMDValue`` does."""
    if isinstance(value, bool):
        return _int(1 if value else 0)
    if isinstance(value, int | float):
        return mlmd.Value(double_value=float(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return _struct({"list": value})
    if isinstance(value, dict):
        return _struct({"struct": value})
    return None


def artifact_copy(artifact: mlmd.Artifact) -> mlmd.Artifact:
    """An artifact as read back, minus the read-only type name, fit to pass to put_execution."""
    copy = mlmd.Artifact()
    copy.CopyFrom(artifact)
    copy.ClearField("type")
    return copy


def _event(event_type: int, key: str) -> mlmd.Event:
    event = mlmd.Event(type=event_type)
    event.path.steps.add().key = key
    return event


def _context_refs(*context_ids: int) -> list[mlmd.Context]:
    return [mlmd.Context(id=context_id) for context_id in context_ids]


def _set(target: Any, key: str, value: mlmd.Value) -> None:
    target[key].CopyFrom(value)


def _string(value: str) -> mlmd.Value:
    return mlmd.Value(string_value=value)


def _int(value: int) -> mlmd.Value:
    return mlmd.Value(int_value=value)


def _struct(value: Mapping[str, Any]) -> mlmd.Value:
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return mlmd.Value(struct_value=struct)


def _artifact_uri(run: TaskRun, task_key: str, output: str) -> str:
    root = run.pipeline_root.rstrip("/")
    return f"{root}/{run.pipeline_name}/{run.run_id}/{task_key}/{uuid.uuid4()}/{output}"


def _session_info(pipeline_root: str) -> str:
    scheme = urlparse(pipeline_root).scheme or "file"
    provider = {"s3": "s3", "minio": "minio", "gs": "gs"}.get(scheme, "file")
    return json.dumps({"Provider": provider, "Params": {}}, separators=(",", ":"))


def _materialise(uri: str, content: str) -> None:
    """Creates the file behind a local URI; remote roots are left alone."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return
    path = Path(parsed.path if parsed.scheme == "file" else uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
