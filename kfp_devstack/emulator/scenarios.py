"""Scenarios: what a run does in the emulator, scripted per pipeline, per run or for everything.

A :class:`Scenario` says how long a run stays PENDING (or that it stays there until
released), how long each task runs, which tasks fail or stay RUNNING until told, and
the metadata of each output artifact. Every field is optional; the effective scenario
of a run overlays, in order, the emulator's defaults, the default script, the script
of the run's KFP pipeline (by pipeline name; a run created from an inline spec goes by
the spec's ``pipelineInfo.name``) and the script of the run itself.

Tasks and artifacts are keyed by a task key (``pusher``) or a task display name
(``Pusher``); an entry under the key wins over one under the display name.

``artifacts`` maps task -> output name -> the metadata of each artifact the output
produces: a list (one artifact per item, possibly none) or a single object. Outputs
without an entry produce one artifact with no metadata.

These classes are shared by the emulator and its control client, so they depend on
nothing else in the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

V = TypeVar("V")
ArtifactMetadata = dict[str, Any]
OutputMetadata = list[ArtifactMetadata] | ArtifactMetadata  # several artifacts, or one


class ScenarioError(ValueError):
    """A scenario document is malformed."""


@dataclass(frozen=True)
class Task:
    """How one task behaves. ``None`` leaves the value to a less specific script."""

    seconds: float | None = None  # how long the task runs
    fails: bool | None = None  # the task fails (the run then fails)
    held: bool | None = None  # the task stays RUNNING until released or failed on command

    def to_json(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Task:
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where} must be an object")
        _reject_unknown(data, {"seconds", "fails", "held"}, where)
        return cls(
            seconds=_optional_seconds(data.get("seconds"), f"{where}.seconds"),
            fails=_optional_bool(data.get("fails"), f"{where}.fails"),
            held=_optional_bool(data.get("held"), f"{where}.held"),
        )

    def overlaid_by(self, other: Task) -> Task:
        return Task(
            seconds=_first_set(other.seconds, self.seconds),
            fails=_first_set(other.fails, self.fails),
            held=_first_set(other.held, self.held),
        )


@dataclass(frozen=True)
class Scenario:
    """What a run does. ``None`` and empty maps leave the value to a less specific script."""

    pending_seconds: float | None = None  # how long the run stays PENDING
    hold_pending: bool | None = None  # the run stays PENDING until released
    task_seconds: float | None = None  # how long each task runs unless its Task says otherwise
    tasks: Mapping[str, Task] = field(default_factory=dict)
    artifacts: Mapping[str, Mapping[str, OutputMetadata]] = field(default_factory=dict)

    @classmethod
    def failing(cls, task: str, **kwargs: Any) -> Scenario:
        """A scenario in which ``task`` (key or display name) fails."""
        tasks = dict(kwargs.pop("tasks", {}))
        tasks[task] = tasks.get(task, Task()).overlaid_by(Task(fails=True))
        return cls(tasks=tasks, **kwargs)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in ("pending_seconds", "hold_pending", "task_seconds"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.tasks:
            data["tasks"] = {name: task.to_json() for name, task in self.tasks.items()}
        if self.artifacts:
            data["artifacts"] = {
                task: {output: metadata for output, metadata in outputs.items()}
                for task, outputs in self.artifacts.items()
            }
        return data

    @classmethod
    def from_json(cls, data: Any) -> Scenario:
        if not isinstance(data, Mapping):
            raise ScenarioError("a scenario must be an object")
        known = {"pending_seconds", "hold_pending", "task_seconds", "tasks", "artifacts"}
        _reject_unknown(data, known, "scenario")
        tasks = data.get("tasks") or {}
        if not isinstance(tasks, Mapping):
            raise ScenarioError("scenario.tasks must be an object")
        return cls(
            pending_seconds=_optional_seconds(data.get("pending_seconds"), "scenario.pending_seconds"),
            hold_pending=_optional_bool(data.get("hold_pending"), "scenario.hold_pending"),
            task_seconds=_optional_seconds(data.get("task_seconds"), "scenario.task_seconds"),
            tasks={str(name): Task.from_json(task, f"scenario.tasks.{name}") for name, task in tasks.items()},
            artifacts=_artifacts_from_json(data.get("artifacts") or {}),
        )

    def overlaid_by(self, other: Scenario) -> Scenario:
        tasks = dict(self.tasks)
        for name, task in other.tasks.items():
            tasks[name] = tasks.get(name, Task()).overlaid_by(task)
        artifacts = {name: dict(outputs) for name, outputs in self.artifacts.items()}
        for name, outputs in other.artifacts.items():
            artifacts.setdefault(name, {}).update(outputs)
        return Scenario(
            pending_seconds=_first_set(other.pending_seconds, self.pending_seconds),
            hold_pending=_first_set(other.hold_pending, self.hold_pending),
            task_seconds=_first_set(other.task_seconds, self.task_seconds),
            tasks=tasks,
            artifacts=artifacts,
        )

    def task(self, key: str, display_name: str) -> Task:
        """The task's behaviour; an entry under the task key wins over its display name."""
        by_display_name = self.tasks.get(display_name, Task())
        by_key = self.tasks.get(key, Task())
        return by_display_name.overlaid_by(by_key)

    def task_seconds_for(self, key: str, display_name: str) -> float:
        seconds = self.task(key, display_name).seconds
        if seconds is None:
            seconds = self.task_seconds
        return seconds or 0.0

    def output_artifacts(self, key: str, display_name: str, output: str) -> list[ArtifactMetadata]:
        """The metadata of each artifact ``output`` produces (default: one, without metadata)."""
        for name in (key, display_name):
            outputs = self.artifacts.get(name, {})
            if output in outputs:
                metadata = outputs[output]
                return [dict(item) for item in metadata] if isinstance(metadata, list) else [dict(metadata)]
        return [{}]


def _artifacts_from_json(data: Any) -> dict[str, dict[str, list[ArtifactMetadata]]]:
    if not isinstance(data, Mapping):
        raise ScenarioError("scenario.artifacts must be an object")
    artifacts: dict[str, dict[str, list[ArtifactMetadata]]] = {}
    for task, outputs in data.items():
        if not isinstance(outputs, Mapping):
            raise ScenarioError(f"scenario.artifacts.{task} must map output names to metadata")
        artifacts[str(task)] = {}
        for output, metadata in outputs.items():
            items = metadata if isinstance(metadata, list) else [metadata]
            if not all(isinstance(item, Mapping) for item in items):
                where = f"scenario.artifacts.{task}.{output}"
                raise ScenarioError(f"{where} must be an object or a list of objects")
            artifacts[str(task)][str(output)] = [dict(item) for item in items]
    return artifacts


def _first_set(preferred: V | None, fallback: V | None) -> V | None:
    return preferred if preferred is not None else fallback


def _reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"{where} has unknown field(s) {', '.join(unknown)}")


def _optional_seconds(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ScenarioError(f"{where} must be a non-negative number of seconds")
    return float(value)


def _optional_bool(value: Any, where: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ScenarioError(f"{where} must be true or false")
    return value
