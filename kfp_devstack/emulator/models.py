"""The emulator's records: what the KFP server keeps in its tables, plus each run's progress.

Records are plain dataclasses that round-trip through JSON (``to_record`` /
``from_record``) for the SQLite write-through store. Times are whole Unix seconds as
the server's columns hold them (0 = unset); progress deadlines are float wall-clock
seconds so a restarted emulator can tell what is overdue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


class RunState(StrEnum):
    UNSPECIFIED = "RUNTIME_STATE_UNSPECIFIED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    PAUSED = "PAUSED"


# Terminate is accepted only from these DB states (docs/emulator.md §4.6); anything else is a 400.
TERMINABLE_STATES = frozenset({RunState.PENDING, RunState.RUNNING, RunState.PAUSED, RunState.UNSPECIFIED})
FINISHED_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED, RunState.SKIPPED})


class StorageState(StrEnum):
    AVAILABLE = "AVAILABLE"
    ARCHIVED = "ARCHIVED"


class TaskState(StrEnum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class TaskCommand(StrEnum):
    """An operator's instruction for a task, applied when it runs (or at once if it is running)."""

    RELEASE = "release"
    FAIL = "fail"


class _Record:
    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _from_record(cls: type[T], record: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in record.items() if key in names})


@dataclass
class Experiment(_Record):
    experiment_id: str
    display_name: str
    description: str
    namespace: str
    created_at: int
    storage_state: str = StorageState.AVAILABLE
    last_run_created_at: int = 0

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Experiment:
        return _from_record(cls, record)


@dataclass
class Pipeline(_Record):
    pipeline_id: str
    name: str
    display_name: str
    description: str
    namespace: str
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Pipeline:
        return _from_record(cls, record)


@dataclass
class PipelineVersion(_Record):
    pipeline_version_id: str
    pipeline_id: str
    name: str
    display_name: str
    description: str
    created_at: int
    spec_digest: str
    code_source_url: str = ""
    package_url: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PipelineVersion:
        return _from_record(cls, record)


@dataclass
class StateChange(_Record):
    update_time: int
    state: str


@dataclass
class TaskProgress(_Record):
    key: str
    state: str = TaskState.WAITING
    attempt: int = 0
    started_at: float | None = None
    ends_at: float | None = None  # None while RUNNING means held until told
    finished_at: float | None = None
    execution_id: int | None = None
    command: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TaskProgress:
        return _from_record(cls, record)


@dataclass
class RunProgress(_Record):
    """Where a run is in its (emulated) workflow, and the MLMD records it has written."""

    workflow_name: str
    submitted_at: float  # precise creation time; the PENDING period counts from here
    tasks: dict[str, TaskProgress]
    pending_released: bool = False
    agent_reported: bool = False  # the persistence agent has reported the phase-less Workflow
    running_since: int = 0
    canceling_since: float | None = None
    canceling_reported: bool = False
    pipeline_context_id: int | None = None
    run_context_id: int | None = None
    root_execution_id: int | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunProgress:
        progress = _from_record(cls, record)
        progress.tasks = {key: TaskProgress.from_record(value) for key, value in record["tasks"].items()}
        return progress


@dataclass
class Run(_Record):
    run_id: str
    experiment_id: str
    namespace: str
    display_name: str
    description: str
    pipeline_name: str  # the KFP pipeline's name (scenarios are scripted by it)
    pipeline_id: str
    pipeline_version_id: str
    spec_digest: str
    inline_spec: bool  # created with an inline pipeline_spec rather than a version reference
    parameters: dict[str, Any]
    pipeline_root: str
    has_runtime_config: bool
    service_account: str
    created_at: int
    state: str
    state_history: list[StateChange]
    progress: RunProgress
    finished_at: int = 0
    storage_state: str = StorageState.AVAILABLE
    plugins_input: dict[str, Any] | None = None

    @property
    def scheduled_at(self) -> int:
        return self.created_at  # the server sets scheduled_at = created_at (docs/emulator.md §4.4)

    def record_state(self, state: RunState, at: int) -> None:
        """Sets the state, appending to the history only on a change, as the persistence agent does."""
        self.state = state
        if not self.state_history or self.state_history[-1].state != state:
            self.state_history.append(StateChange(update_time=at, state=state))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        run = _from_record(cls, record)
        run.state_history = [StateChange(**change) for change in record["state_history"]]
        run.progress = RunProgress.from_record(record["progress"])
        return run
