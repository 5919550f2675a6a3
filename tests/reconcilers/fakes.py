"""Recording fakes of everything a reconciler talks to, and a fixture that wires them.

In the style of sample-controller's ``controller_test.go``: the informer caches are stores
preloaded with objects, the clients record every request they get and answer from what the
test put in them, the clock is fake, and a test calls ``reconcile(key)`` once and compares what
was asked, written and recorded with what it expects. No threads, no timers, no servers.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from controller.clock import FakeClock
from controller.keys import ObjectKey, key_func
from controller.resource import Resource
from controller.store import Store
from controller.transform import strip_for_cache
from reconcilers.artifacts import records
from reconcilers.clients import DeliveryFailed, KfpError
from reconcilers.run.resolve import PipelineVersion
from reconcilers.run_metrics import RunMetrics

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One request a fake received: the verb, what it addressed, and its payload."""

    verb: str
    target: str = ""
    body: Any = None


class RecordingKube:
    """The Kubernetes client: records writes, answers uncached reads from ``objects``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.objects: dict[tuple[str, ObjectKey], Obj] = {}
        self._versions = itertools.count(100)

    def put(self, resource: Resource, obj: Obj) -> None:
        self.objects[(resource.plural, key_func(obj))] = copy.deepcopy(obj)

    def verbs(self) -> list[str]:
        return [r.verb for r in self.requests]

    def status_patches(self) -> list[Any]:
        return [r.body for r in self.requests if r.verb == "patch_status"]

    def get_or_none(self, resource: Resource, key: ObjectKey) -> Obj | None:
        self.requests.append(Request("get", f"{resource.plural}/{key}"))
        found = self.objects.get((resource.plural, key))
        return copy.deepcopy(found) if found is not None else None

    def create_if_absent(self, resource: Resource, obj: Mapping[str, Any]) -> Obj | None:
        self.requests.append(Request("create", resource.plural, copy.deepcopy(dict(obj))))
        key = (resource.plural, key_func(obj))
        if key in self.objects:
            return None
        self.objects[key] = copy.deepcopy(dict(obj))
        return copy.deepcopy(dict(obj))

    def patch_status(
        self,
        resource: Resource,
        key: ObjectKey,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> Obj:
        body = {"status": copy.deepcopy(dict(status))}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        self.requests.append(Request("patch_status", f"{resource.plural}/{key}", body))
        return body

    def add_finalizer(self, resource: Resource, obj: Mapping[str, Any], finalizer: str) -> Obj | None:
        if finalizer in (obj["metadata"].get("finalizers") or ()):
            return None
        self.requests.append(Request("add_finalizer", f"{resource.plural}/{key_func(obj)}", finalizer))
        updated = copy.deepcopy(dict(obj))
        updated["metadata"]["finalizers"] = [*(obj["metadata"].get("finalizers") or ()), finalizer]
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        return updated

    def remove_finalizer(self, resource: Resource, obj: Mapping[str, Any], finalizer: str) -> Obj | None:
        if finalizer not in (obj["metadata"].get("finalizers") or ()):
            return None
        self.requests.append(Request("remove_finalizer", f"{resource.plural}/{key_func(obj)}", finalizer))
        updated = copy.deepcopy(dict(obj))
        updated["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
        return updated

    def delete(
        self,
        resource: Resource,
        key: ObjectKey,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> bool:
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        self.requests.append(Request("delete", f"{resource.plural}/{key}", preconditions))
        return self.objects.pop((resource.plural, key), None) is not None


@dataclass(frozen=True)
class RecordedEvent:
    type: str
    reason: str
    message: str


class RecordingRecorder:
    """The Event recorder: keeps every Event, in order."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        self.events.append(RecordedEvent(type, reason, message))

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


class FakeKfp:
    """KFP's run API: runs by id; ``create_errors`` are raised by the next creates, in order."""

    multi_user = False

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.runs: dict[str, Obj] = {}
        self.create_errors: list[KfpError] = []
        self.get_errors: list[KfpError] = []
        self.terminate_errors: list[KfpError] = []
        self._ids = itertools.count(1)

    def verbs(self) -> list[str]:
        return [r.verb for r in self.requests]

    def add_run(self, state: str, *, description: str = "", run_id: str | None = None, **fields: Any) -> Obj:
        run_id = run_id or f"kfp-{next(self._ids)}"
        self.runs[run_id] = {
            "run_id": run_id,
            "state": state,
            "description": description,
            "created_at": "2026-01-02T03:00:00Z",
            "finished_at": fields.pop("finished_at", "1970-01-01T00:00:00Z"),
            **fields,
        }
        return self.runs[run_id]

    def create_run(self, body: Mapping[str, Any]) -> Obj:
        self.requests.append(Request("create_run", "", copy.deepcopy(dict(body))))
        if self.create_errors:
            raise self.create_errors.pop(0)
        return copy.deepcopy(self.add_run("PENDING", description=body.get("description", "")))

    def get_run(self, run_id: str) -> Obj | None:
        self.requests.append(Request("get_run", run_id))
        if self.get_errors:
            raise self.get_errors.pop(0)
        found = self.runs.get(run_id)
        return copy.deepcopy(found) if found is not None else None

    def terminate_run(self, run_id: str) -> None:
        self.requests.append(Request("terminate_run", run_id))
        if self.terminate_errors:
            raise self.terminate_errors.pop(0)
        self.runs[run_id]["state"] = "CANCELING"

    def list_runs(
        self, *, filter: Mapping[str, Any], sort_by: str = "", namespace: str = ""
    ) -> Iterator[Obj]:
        self.requests.append(Request("list_runs", sort_by, copy.deepcopy(dict(filter))))
        (predicate,) = [p for p in filter["predicates"] if p["key"] == "description"]
        matching = [r for r in self.runs.values() if predicate["string_value"] in r.get("description", "")]
        yield from (copy.deepcopy(r) for r in sorted(matching, key=lambda r: r["created_at"]))


@dataclass
class FakeCatalog:
    """KFP lookups by name: pipelines, their versions (latest last) and experiments."""

    pipelines: dict[str, str] = field(default_factory=lambda: {"penguin-pipeline": "p-1"})
    versions: dict[str, list[PipelineVersion]] = field(
        default_factory=lambda: {"p-1": [PipelineVersion("p-1", "v-1", "v1-abcdef")]}
    )
    experiments: dict[str, str] = field(
        default_factory=lambda: {"penguin-experiment": "e-1", "Default": "e-0"}
    )

    def pipeline_id(self, name: str, namespace: str) -> str | None:
        return self.pipelines.get(name)

    def pipeline_version(self, pipeline_id: str, version_name: str | None) -> PipelineVersion | None:
        versions = self.versions.get(pipeline_id, [])
        if version_name is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v.name == version_name), None)

    def experiment_id(self, display_name: str, namespace: str) -> str | None:
        return self.experiments.get(display_name)

    def pipeline_version_by_id(self, pipeline_id: str, version_id: str) -> PipelineVersion | None:
        return next((v for v in self.versions.get(pipeline_id, []) if v.version_id == version_id), None)

    def experiment_name(self, experiment_id: str) -> str | None:
        return next((name for name, eid in self.experiments.items() if eid == experiment_id), None)


class FakeMetadata:
    """ML Metadata: for each KFP run id, the outputs its tasks wrote, as resolution reads them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.errors: list[Exception] = []  # raised by the next calls, one each
        self._ids = itertools.count(1)
        self._contexts: dict[str, int] = {}
        self._executions: dict[int, list[records.Execution]] = {}
        self._events: list[records.Event] = []
        self._artifacts: dict[int, records.Artifact] = {}

    def add_output(self, run_id: str, task: str, output: str, uri: str, **properties: int) -> None:
        context_id = self._contexts.setdefault(run_id, next(self._ids))
        execution = records.Execution(
            id=next(self._ids),
            type="system.ContainerExecution",
            state=records.COMPLETE,
            strings={"task_name": task},
        )
        artifact = records.Artifact(
            id=next(self._ids),
            uri=uri,
            state=records.LIVE,
            properties={k: float(v) for k, v in properties.items()},
        )
        self._executions.setdefault(context_id, []).append(execution)
        self._events.append(records.Event(execution.id, artifact.id, records.OUTPUT, (output,)))
        self._artifacts[artifact.id] = artifact

    def get_executions_in_context(self, type_name: str, context_name: str) -> list[records.Execution]:
        self.calls.append("GetExecutions")
        if self.errors:
            raise self.errors.pop(0)
        context_id = self._contexts.get(context_name)
        return list(self._executions.get(context_id, [])) if context_id is not None else []

    def get_context_id(self, type_name: str, context_name: str) -> int | None:
        self.calls.append("GetContextByTypeAndName")
        return self._contexts.get(context_name)

    def get_events_by_execution_ids(self, execution_ids: Any) -> list[records.Event]:
        self.calls.append("GetEventsByExecutionIDs")
        ids = set(execution_ids)
        return [e for e in self._events if e.execution_id in ids]

    def get_artifacts_by_id(self, artifact_ids: Any) -> list[records.Artifact]:
        self.calls.append("GetArtifactsByID")
        return [self._artifacts[i] for i in artifact_ids if i in self._artifacts]


class RecordingSink:
    """An event sink: keeps what it was given; ``failing`` makes it refuse."""

    def __init__(self, name: str, *, failing: bool = False) -> None:
        self.name = name
        self.failing = failing
        self.published: list[Mapping[str, Any]] = []

    def publish(self, event: Mapping[str, Any]) -> None:
        if self.failing:
            raise DeliveryFailed(f"{self.name}: refused")
        self.published.append(copy.deepcopy(dict(event)))


def cached(obj: Obj) -> Obj:
    """``obj`` as the operator's informers cache it: reconcilers are tested on what they get."""
    return strip_for_cache(copy.deepcopy(obj))


@dataclass
class Fixture:
    """The world of one reconciler test: caches, clients, a recorder and a clock at :data:`NOW`."""

    runs: Store = field(default_factory=Store)
    run_configurations: Store = field(default_factory=Store)
    kube: RecordingKube = field(default_factory=RecordingKube)
    kfp: FakeKfp = field(default_factory=FakeKfp)
    catalog: FakeCatalog = field(default_factory=FakeCatalog)
    metadata: FakeMetadata = field(default_factory=FakeMetadata)
    recorder: RecordingRecorder = field(default_factory=RecordingRecorder)
    clock: FakeClock = field(default_factory=lambda: FakeClock(wall=NOW))
    metrics: RunMetrics = field(default_factory=lambda: RunMetrics(CollectorRegistry()))

    def add_runs(self, *objs: Obj) -> None:
        for obj in objs:
            self.runs.upsert(cached(obj))

    def add_run_configurations(self, *objs: Obj) -> None:
        for obj in objs:
            self.run_configurations.upsert(cached(obj))

    def counter(self, metric: Any, *labels: str) -> float:
        child = metric.labels(*labels) if labels else metric
        return float(child._value.get())
