"""Recording fakes of KFP's pipeline and experiment API, and a fixture with Pipeline and Experiment caches.

In the style of ``tests/reconcilers/fakes.py``: state the test puts in, requests recorded in order,
errors raised by the next calls of a verb.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.store import Store
from reconcilers.clients import KfpError
from tests.reconcilers.fakes import Fixture, Request, cached

Obj = dict[str, Any]


class FakeKfpResources:
    """KFP pipelines, versions and experiments. ``errors[verb]`` are raised by that verb's next calls."""

    multi_user = False

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.pipelines: dict[str, Obj] = {}
        self.versions: dict[str, list[Obj]] = {}  # pipeline id -> versions, oldest first
        self.contents: dict[str, str] = {}  # version id -> uploaded content
        self.experiments: dict[str, Obj] = {}
        self.experiment_runs: set[str] = set()  # experiments that have runs
        self.errors: dict[str, list[KfpError]] = {}
        self._ids = itertools.count(1)

    # -- test setup ---------------------------------------------------------------------------

    def add_pipeline(self, name: str, description: str = "", pipeline_id: str | None = None) -> Obj:
        pipeline_id = pipeline_id or f"p-{next(self._ids)}"
        self.pipelines[pipeline_id] = {
            "pipeline_id": pipeline_id,
            "name": name,
            "display_name": name,
            "description": description,
        }
        self.versions.setdefault(pipeline_id, [])
        return self.pipelines[pipeline_id]

    def add_version(self, pipeline_id: str, name: str, description: str = "") -> Obj:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": f"v-{next(self._ids)}",
            "name": name,
            "display_name": name,
            "description": description,
        }
        self.versions[pipeline_id].append(version)
        return version

    def add_experiment(self, name: str, description: str = "", archived: bool = False) -> Obj:
        experiment_id = f"e-{next(self._ids)}"
        self.experiments[experiment_id] = {
            "experiment_id": experiment_id,
            "display_name": name,
            "description": description,
            "storage_state": "ARCHIVED" if archived else "AVAILABLE",
        }
        return self.experiments[experiment_id]

    def verbs(self) -> list[str]:
        return [r.verb for r in self.requests]

    def version_names(self, pipeline_id: str) -> list[str]:
        return [v["name"] for v in self.versions.get(pipeline_id, [])]

    def _call(self, verb: str, target: str = "", body: Any = None) -> None:
        self.requests.append(Request(verb, target, copy.deepcopy(body)))
        errors = self.errors.get(verb)
        if errors:
            raise errors.pop(0)

    # -- pipelines ----------------------------------------------------------------------------

    def get_pipeline_by_name(self, name: str, namespace: str) -> Obj | None:
        self._call("get_pipeline_by_name", name)
        found = [p for p in self.pipelines.values() if p["name"] == name]
        return copy.deepcopy(found[-1]) if found else None

    def get_pipeline(self, pipeline_id: str) -> Obj | None:
        self._call("get_pipeline", pipeline_id)
        found = self.pipelines.get(pipeline_id)
        return copy.deepcopy(found) if found else None

    def create_pipeline(self, *, name: str, description: str, namespace: str) -> Obj:
        self._call("create_pipeline", name, description)
        return copy.deepcopy(self.add_pipeline(name, description))

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._call("delete_pipeline", pipeline_id)
        self.pipelines.pop(pipeline_id, None)
        self.versions.pop(pipeline_id, None)

    def find_pipeline_version(self, pipeline_id: str, name: str) -> Obj | None:
        self._call("find_pipeline_version", f"{pipeline_id}/{name}")
        found = [v for v in self.versions.get(pipeline_id, []) if v["name"] == name]
        return copy.deepcopy(found[0]) if found else None

    def all_pipeline_versions(self, pipeline_id: str) -> Iterator[Obj]:
        self._call("all_pipeline_versions", pipeline_id)
        yield from copy.deepcopy(self.versions.get(pipeline_id, []))

    def upload_pipeline_version(self, pipeline_id: str, *, name: str, description: str, content: str) -> Obj:
        self._call("upload_pipeline_version", f"{pipeline_id}/{name}", description)
        version = self.add_version(pipeline_id, name, description)
        self.contents[version["pipeline_version_id"]] = content
        return copy.deepcopy(version)

    def delete_pipeline_version(self, pipeline_id: str, version_id: str) -> None:
        self._call("delete_pipeline_version", f"{pipeline_id}/{version_id}")
        self.versions[pipeline_id] = [
            v for v in self.versions.get(pipeline_id, []) if v["pipeline_version_id"] != version_id
        ]

    # -- experiments --------------------------------------------------------------------------

    def find_experiment(self, display_name: str, namespace: str) -> Obj | None:
        self._call("find_experiment", display_name)
        found = [e for e in self.experiments.values() if e["display_name"] == display_name]
        return copy.deepcopy(found[0]) if found else None

    def get_experiment(self, experiment_id: str) -> Obj | None:
        self._call("get_experiment", experiment_id)
        found = self.experiments.get(experiment_id)
        return copy.deepcopy(found) if found else None

    def create_experiment(self, *, display_name: str, description: str, namespace: str) -> Obj:
        self._call("create_experiment", display_name, description)
        return copy.deepcopy(self.add_experiment(display_name, description))

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("delete_experiment", experiment_id)
        self.experiments.pop(experiment_id, None)

    def archive_experiment(self, experiment_id: str) -> None:
        self._call("archive_experiment", experiment_id)
        self.experiments[experiment_id]["storage_state"] = "ARCHIVED"

    def unarchive_experiment(self, experiment_id: str) -> None:
        self._call("unarchive_experiment", experiment_id)
        self.experiments[experiment_id]["storage_state"] = "AVAILABLE"

    def experiment_has_runs(self, experiment_id: str) -> bool:
        self._call("experiment_has_runs", experiment_id)
        return experiment_id in self.experiment_runs


@dataclass
class ResourceFixture(Fixture):
    """The fixture of ``fakes.py`` with Pipeline and Experiment caches and a KFP that has them."""

    pipelines: Store = field(default_factory=Store)
    experiments: Store = field(default_factory=Store)
    kfp_resources: FakeKfpResources = field(default_factory=FakeKfpResources)

    def add_pipelines(self, *objs: Obj) -> None:
        for obj in objs:
            self.pipelines.upsert(cached(obj))

    def add_experiments(self, *objs: Obj) -> None:
        for obj in objs:
            self.experiments.upsert(cached(obj))


def merged(current: Any, patch: Any) -> Any:
    """RFC 7386: what a JSON merge patch makes of ``current``."""
    if not isinstance(patch, dict):
        return patch
    result = dict(current) if isinstance(current, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


def written(obj: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    status = obj.get("status") or {}
    for patch in patches:
        status = merged(status, patch["status"])
    return status


def condition(status: dict[str, Any], condition_type: str) -> dict[str, Any]:
    [found] = [c for c in status["conditions"] if c["type"] == condition_type]
    return found


def waiting_on_kfp(status: dict[str, Any]) -> tuple[str, str, str]:
    """The state, and the status and reason of ``Synchronized``."""
    synchronized = condition(status, "Synchronized")
    return status["synchronizationState"], synchronized["status"], synchronized["reason"]


def fails_quietly_again(
    f: Fixture, reconcile: Callable[[], object], error: type[Exception] = KfpError
) -> None:
    """The same failure again: nothing new to say, so no status write (which would set off
    another reconcile at once) and no second Event; the error goes to the work queue."""
    patches, events = len(f.kube.status_patches()), f.recorder.reasons()
    with pytest.raises(error):
        reconcile()
    assert len(f.kube.status_patches()) == patches
    assert f.recorder.reasons() == events
