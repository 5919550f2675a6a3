"""Resolving ``spec.artifacts`` (``COMPONENT:OUTPUT:INDEX[FILTER]``) from ML Metadata.

The records of one KFP run are read once (the executions in its run context, their
OUTPUT events, the artifacts: three calls; for runs found finished together, one call per
run and two for them all) and every path is resolved from them in memory, the way KFP's own
driver follows them:

1. the ``system.PipelineRun`` context named by the KFP run id;
2. the completed container executions whose ``task_name`` is COMPONENT (the
   pipeline's task key), falling back to the ``display_name`` property (the name
   given with ``set_display_name``) when no task has that key; when a task ran
   several times (retries), the latest execution;
3. its OUTPUT events whose first path step is OUTPUT, ordered by the event's
   index step when present (TFX) and then by artifact id (KFP v2 writes one step);
4. the INDEX-th of their artifacts, which must be LIVE and have a URI;
5. FILTER applied to that one artifact's custom properties: no match, no artifact.

INDEX before FILTER is the Go kfp-operator's order: ``Pusher:pushed_model:0[pushed == 1]``
names the first ``pushed_model`` output if it was pushed, and nothing otherwise; it never falls
back to another output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from reconcilers.api.run import Artifact, OutputArtifactSpec
from reconcilers.artifacts import records
from reconcilers.artifacts.filter import FilterEvaluationError
from reconcilers.artifacts.path import ArtifactPath, parse_artifact_path

RUN_CONTEXT_TYPE = "system.PipelineRun"
TASK_EXECUTION_TYPES = frozenset({"system.ContainerExecution", "system.ImporterExecution"})
FINISHED_STATES = frozenset({records.COMPLETE, records.CACHED})


class MetadataUnavailable(Exception):
    """ML Metadata could not be reached or failed a read: ``rpc`` and ``code`` (a gRPC status
    code's name) say which and how, in words that are the same each time the cause is."""

    def __init__(self, rpc: str, code: str, details: str) -> None:
        super().__init__(f"ML Metadata {rpc}: {code}: {details}")
        self.rpc = rpc
        self.code = code


class MetadataReader(Protocol):
    """The ML Metadata reads artifact resolution needs (``kfp_operator.clients.mlmd`` has them);
    each raises :class:`MetadataUnavailable` when ML Metadata does not answer."""

    def get_executions_in_context(self, type_name: str, context_name: str) -> list[records.Execution]:
        """The executions in the context of that type and name; none when there is no such context."""
        ...

    def get_context_id(self, type_name: str, context_name: str) -> int | None:
        """The id of the context of that type and name, or None when there is none (yet)."""
        ...

    def get_events_by_execution_ids(self, execution_ids: Iterable[int]) -> list[records.Event]: ...

    def get_artifacts_by_id(self, artifact_ids: Iterable[int]) -> list[records.Artifact]: ...


class RunMetadataNotFound(LookupError):
    """ML Metadata has no context for the run (yet)."""


@dataclass(frozen=True)
class RunMetadata:
    """The ML Metadata records of one run that artifact paths are resolved against."""

    executions: Sequence[records.Execution]
    events: Sequence[records.Event]
    artifacts: Mapping[int, records.Artifact]


@dataclass(frozen=True)
class Unresolved:
    """An artifact definition that matched nothing, and why, for a warning."""

    name: str
    reason: str


def read_run_metadata(store: MetadataReader, run_id: str, components: Iterable[str]) -> RunMetadata:
    """Reads what is needed to resolve paths of ``components``: three calls, whatever the count
    (and a fourth when the run has no execution, to tell whether ML Metadata knows the run)."""
    found = read_runs_metadata(store, {run_id: components})
    if run_id in found:
        return found[run_id]
    if store.get_context_id(RUN_CONTEXT_TYPE, run_id) is None:
        raise RunMetadataNotFound(f"ML Metadata has no {RUN_CONTEXT_TYPE} context named {run_id}")
    return RunMetadata(executions=[], events=[], artifacts={})


def read_runs_metadata(
    store: MetadataReader, components_by_run: Mapping[str, Iterable[str]]
) -> dict[str, RunMetadata]:
    """Reads the records of several runs (run id: the components whose paths are resolved) with
    one call per run and two for them all: the executions are read run by run (ML Metadata does
    not say which run's context an execution came from), their events and artifacts together.
    A run with no execution at all is left out."""
    executions_by_run: dict[str, list[records.Execution]] = {}
    for run_id, components in components_by_run.items():
        in_run = store.get_executions_in_context(RUN_CONTEXT_TYPE, run_id)
        if in_run:
            wanted = set(components)
            executions_by_run[run_id] = [e for e in in_run if _task_names(e) & wanted or not wanted]
    execution_ids = [e.id for executions in executions_by_run.values() for e in executions]
    events_by_execution: dict[int, list[records.Event]] = {}
    artifacts: dict[int, records.Artifact] = {}
    if execution_ids:
        for event in store.get_events_by_execution_ids(execution_ids):
            if event.type == records.OUTPUT:
                events_by_execution.setdefault(event.execution_id, []).append(event)
        artifact_ids = {e.artifact_id for events in events_by_execution.values() for e in events}
        if artifact_ids:
            artifacts = {a.id: a for a in store.get_artifacts_by_id(sorted(artifact_ids))}
    found: dict[str, RunMetadata] = {}
    for run_id, executions in executions_by_run.items():
        events = [event for e in executions for event in events_by_execution.get(e.id, ())]
        found[run_id] = RunMetadata(
            executions=executions,
            events=events,
            artifacts={e.artifact_id: artifacts[e.artifact_id] for e in events if e.artifact_id in artifacts},
        )
    return found


def components_of(definitions: Iterable[OutputArtifactSpec]) -> set[str]:
    return {parse_artifact_path(d.path).component for d in definitions}


def resolve_artifacts(
    definitions: Sequence[OutputArtifactSpec], metadata: RunMetadata
) -> tuple[list[Artifact], list[Unresolved]]:
    """Resolves every definition; returns the artifacts found and the definitions that matched nothing."""
    found: list[Artifact] = []
    unresolved: list[Unresolved] = []
    for definition in definitions:
        path = parse_artifact_path(definition.path)
        location, reason = _resolve_one(path, metadata)
        if location is None:
            unresolved.append(Unresolved(definition.name, reason))
        else:
            found.append(Artifact(name=definition.name, location=location))
    return found, unresolved


def _resolve_one(path: ArtifactPath, metadata: RunMetadata) -> tuple[str | None, str]:
    execution = _latest_execution(path.component, metadata.executions)
    if execution is None:
        return None, f"no finished task {path.component} in the run"
    outputs = sorted(
        (
            e
            for e in metadata.events
            if e.execution_id == execution.id and e.path and e.path[0] == path.output
        ),
        key=lambda e: (_step_index(e), e.artifact_id),
    )
    if not outputs:
        return None, f"task {path.component} has no output {path.output}"
    reference = f"{path.component}:{path.output}:{path.index}"
    if path.index >= len(outputs):
        return (
            None,
            f"output {path.component}:{path.output} has {len(outputs)} artifact(s) and no index {path.index}",
        )
    artifact = metadata.artifacts.get(outputs[path.index].artifact_id)
    if artifact is None:
        return None, f"artifact {reference} (id {outputs[path.index].artifact_id}) is not in ML Metadata"
    if artifact.state != records.LIVE:
        return None, f"artifact {reference} is {artifact.state}, not LIVE"
    if not artifact.uri:
        return None, f"artifact {reference} has no URI"
    if path.filter is not None:
        try:
            matched = path.filter.evaluate(artifact.properties)
        except FilterEvaluationError as error:
            return None, f"artifact {reference} does not match [{path.filter}]: {error}"
        if not matched:
            return None, f"artifact {reference} does not match [{path.filter}]"
    return artifact.uri, ""


def _step_index(event: records.Event) -> int:
    """The index step of a TFX event path (``[key, index]``); KFP v2 writes the key only."""
    second = event.path[1] if len(event.path) > 1 else 0
    return second if isinstance(second, int) else 0


def _latest_execution(component: str, executions: Sequence[records.Execution]) -> records.Execution | None:
    finished = [e for e in executions if e.type in TASK_EXECUTION_TYPES and e.state in FINISHED_STATES]
    for key in ("task_name", "display_name"):
        matching = [e for e in finished if e.strings.get(key, "") == component]
        if matching:
            return max(matching, key=lambda e: e.id)
    return None


def _task_names(execution: records.Execution) -> set[str]:
    return {execution.strings.get("task_name", ""), execution.strings.get("display_name", "")} - {""}
