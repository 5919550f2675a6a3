"""The run engine: moves runs through their states over time and writes MLMD as they go.

A run is PENDING at creation. The persistence agent's first report of its new
Workflow, which has no phase yet, takes the state away (RUNTIME_STATE_UNSPECIFIED,
a history entry without a state); the run stays so for its scenario's
``pending_seconds`` (or until released), then is RUNNING: the root driver's MLMD
records are written, and the tasks run one after another in topological order, each
for its scripted time (or until released), then succeed or fail. The run ends
SUCCEEDED when every task has, FAILED at the first failed task. Times of day on the
API are whole seconds; the engine's deadlines are precise wall-clock seconds kept with
the run, so a restarted emulator picks up where it stopped (an overdue task simply
finishes at once).

Mirroring the real server (docs/emulator.md §6):

* the history grows only when the state changes;
* terminate sets CANCELING in the run at once without touching the history; the next
  report appends CANCELING and the run ends FAILED, since Argo has no terminated
  phase. A task killed this way keeps its RUNNING execution in MLMD: the launcher
  that would have finished it is gone;
* retry of a FAILED run resets ``finished_at``, goes back to RUNNING and reruns the
  tasks that did not succeed, as new executions (the old ones stay).

One thread runs the engine; it and the HTTP handlers share the store's lock.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
import time
import zlib
from collections.abc import Callable

from kfp_devstack.emulator.mlmd_writer import MetadataWriter, OutputArtifact, RunRecords, TaskRun
from kfp_devstack.emulator.models import Run, RunProgress, RunState, TaskCommand, TaskProgress, TaskState
from kfp_devstack.emulator.pipeline_spec import PipelineSpec, TaskDefinition
from kfp_devstack.emulator.scenario_book import ScenarioBook
from kfp_devstack.emulator.store import Store

LOG = logging.getLogger(__name__)

_ACTIVE_STATES = frozenset({RunState.PENDING, RunState.UNSPECIFIED, RunState.RUNNING, RunState.CANCELING})
NOT_STARTED_STATES = frozenset({RunState.PENDING, RunState.UNSPECIFIED})
_RETRY_AFTER_ERROR_SECONDS = 1.0
_IDLE_WAKEUP_SECONDS = 1.0


class UnknownRunError(LookupError):
    pass


class UnknownTaskError(LookupError):
    pass


class TaskFinishedError(RuntimeError):
    pass


class RunEngine:
    def __init__(
        self,
        store: Store,
        scenarios: ScenarioBook,
        writer: MetadataWriter,
        *,
        default_pipeline_root: str,
        cancel_seconds: float,
        clock: Callable[[], float] = time.time,
        observer: Callable[[Run], None] | None = None,
    ) -> None:
        self._store = store
        self._scenarios = scenarios
        self._writer = writer
        self._default_pipeline_root = default_pipeline_root
        self._cancel_seconds = cancel_seconds
        self._clock = clock
        # Told of every active run after each pass over it, under the store's lock: it must be quick.
        self._observer = observer
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        with store.lock:
            self._active = {run_id for run_id, run in store.runs.items() if run.state in _ACTIVE_STATES}

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kfp-run-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def notify(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    # --- commands (from the API and the control surface) --------------------------------------------

    def new_progress(self, spec: PipelineSpec) -> RunProgress:
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        return RunProgress(
            workflow_name=f"{spec.pipeline_name}-{suffix}",
            submitted_at=self._clock(),
            tasks={key: TaskProgress(key=key) for key in spec.order},
        )

    def track(self, run: Run) -> None:
        """Starts driving a newly created (or retried) run."""
        with self._store.lock:
            self._active.add(run.run_id)
        self.notify()

    def forget(self, run_id: str) -> None:
        with self._store.lock:
            self._active.discard(run_id)

    def terminate(self, run: Run) -> None:
        """Sets CANCELING at once (the history is left to the next report); the run then ends FAILED."""
        with self._store.lock:
            run.state = RunState.CANCELING
            run.progress.canceling_since = self._clock()
            run.progress.canceling_reported = False
            self._store.save_run(run)
            self._active.add(run.run_id)
        self.notify()

    def retry(self, run: Run) -> None:
        with self._store.lock:
            progress = run.progress
            for task in progress.tasks.values():
                if task.state != TaskState.SUCCEEDED:
                    progress.tasks[task.key] = TaskProgress(key=task.key, attempt=task.attempt)
            progress.canceling_since = None
            run.finished_at = 0
            run.record_state(RunState.RUNNING, int(self._clock()))
            progress.running_since = progress.running_since or int(self._clock())
            if progress.root_execution_id is not None:
                self._writer.set_run_state(_records(progress), succeeded=None)
            self._store.save_run(run)
            self._active.add(run.run_id)
        self.notify()

    def release(self, run_id: str, task_name: str | None) -> list[str]:
        """Lets a held run or task go on; with a task name, that task completes now or won't hold."""
        released: list[str] = []
        with self._store.lock:
            run = self._run(run_id)
            progress = run.progress
            if task_name is None:
                if run.state in NOT_STARTED_STATES and not progress.pending_released:
                    progress.pending_released = True
                    released.append("pending")
                for task in progress.tasks.values():
                    if task.state == TaskState.RUNNING and task.ends_at is None:
                        task.command = TaskCommand.RELEASE
                        released.append(task.key)
            else:
                task = self._task(run, task_name)
                if task.state in (TaskState.SUCCEEDED, TaskState.FAILED):
                    raise TaskFinishedError(f"task {task.key} of run {run.run_id} has already finished")
                task.command = TaskCommand.RELEASE
                released.append(task.key)
            self._store.save_run(run)
        self.notify()
        return released

    def fail(self, run_id: str, task_name: str) -> str:
        """Fails a task now if it is running, or as soon as it starts."""
        with self._store.lock:
            run = self._run(run_id)
            task = self._task(run, task_name)
            if task.state in (TaskState.SUCCEEDED, TaskState.FAILED):
                raise TaskFinishedError(f"task {task.key} of run {run.run_id} has already finished")
            task.command = TaskCommand.FAIL
            self._store.save_run(run)
        self.notify()
        return task.key

    def _run(self, run_id: str) -> Run:
        run = self._store.runs.get(run_id)
        if run is None:
            raise UnknownRunError(f"run {run_id} not found")
        return run

    def _task(self, run: Run, name: str) -> TaskProgress:
        if name in run.progress.tasks:
            return run.progress.tasks[name]
        spec = self._store.spec(run.spec_digest)
        for key, definition in spec.tasks.items():
            if definition.display_name == name:
                return run.progress.tasks[key]
        raise UnknownTaskError(f"run {run.run_id} has no task {name!r}")

    # --- the loop --------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            deadline = self._advance_all()
            with self._wakeup:
                if self._stopping:
                    return
                wait = _IDLE_WAKEUP_SECONDS if deadline is None else deadline - self._clock()
                if wait > 0:
                    self._wakeup.wait(min(wait, _IDLE_WAKEUP_SECONDS))
                if self._stopping:
                    return

    def _advance_all(self) -> float | None:
        next_deadline: float | None = None
        with self._store.lock:
            for run_id in sorted(self._active):
                run = self._store.runs.get(run_id)
                if run is None or run.state not in _ACTIVE_STATES:
                    self._active.discard(run_id)
                    continue
                try:
                    deadline = self._advance(run, self._clock())
                except Exception:
                    LOG.exception("advancing run %s failed; retrying shortly", run_id)
                    deadline = self._clock() + _RETRY_AFTER_ERROR_SECONDS
                if self._observer is not None:
                    self._observer(run)
                if run.state not in _ACTIVE_STATES:
                    self._active.discard(run_id)
                if deadline is not None and (next_deadline is None or deadline < next_deadline):
                    next_deadline = deadline
        return next_deadline

    def _advance(self, run: Run, now: float) -> float | None:
        """Applies every transition that is due; returns when to look again (None: when told)."""
        if run.state == RunState.CANCELING:
            return self._advance_canceling(run, now)
        progress = run.progress
        if run.state in NOT_STARTED_STATES:
            if not progress.agent_reported:
                # The agent reports the new Workflow before it has a phase (docs/emulator.md §6).
                run.record_state(RunState.UNSPECIFIED, int(now))
                progress.agent_reported = True
                self._store.save_run(run)
            scenario = self._scenarios.for_run(run)
            if not progress.pending_released:
                if scenario.hold_pending:
                    return None
                due = progress.submitted_at + (scenario.pending_seconds or 0.0)
                if now < due:
                    return due
            run.record_state(RunState.RUNNING, int(now))
            progress.running_since = int(now)
            self._store.save_run(run)
        if run.state != RunState.RUNNING:
            return None
        spec = self._store.spec(run.spec_digest)
        if progress.root_execution_id is None:
            self._open_run(run, spec)
        while True:
            running = next((t for t in _in_order(progress, spec) if t.state == TaskState.RUNNING), None)
            if running is not None:
                due = running.command is not None or (running.ends_at is not None and now >= running.ends_at)
                if not due:
                    return running.ends_at
                self._finish_task(run, spec, running, now)
                if running.state == TaskState.FAILED:
                    self._finish_run(run, succeeded=False, now=now)
                    return None
                continue
            ready = next((t for t in _in_order(progress, spec) if _is_ready(t, progress, spec)), None)
            if ready is not None:
                self._start_task(run, spec, ready, now)
                continue
            succeeded = all(task.state == TaskState.SUCCEEDED for task in progress.tasks.values())
            self._finish_run(run, succeeded=succeeded, now=now)
            return None

    def _advance_canceling(self, run: Run, now: float) -> float | None:
        progress = run.progress
        since = progress.canceling_since if progress.canceling_since is not None else now
        report_at = since + self._cancel_seconds / 2
        if not progress.canceling_reported:
            if now < report_at:
                return report_at
            run.record_state(RunState.CANCELING, int(now))
            progress.canceling_reported = True
            self._store.save_run(run)
        done_at = since + self._cancel_seconds
        if now < done_at:
            return done_at
        for task in progress.tasks.values():
            if task.state == TaskState.RUNNING:
                # The pod is killed: Argo marks the node failed, MLMD keeps the RUNNING execution.
                task.state = TaskState.FAILED
                task.finished_at = now
        progress.canceling_since = None
        run.record_state(RunState.FAILED, int(now))
        run.finished_at = int(now)
        self._store.save_run(run)
        return None

    # --- MLMD-writing steps -------------------------------------------------------------------------------

    def _open_run(self, run: Run, spec: PipelineSpec) -> None:
        records = self._writer.open_run(
            run_id=run.run_id,
            pipeline_name=spec.pipeline_name,
            pipeline_root=self._pipeline_root(run),
            namespace=_cluster_namespace(run),
            parameters=spec.resolved_parameters(run.parameters),
            task_count=len(spec.tasks),
        )
        progress = run.progress
        progress.pipeline_context_id = records.pipeline_context_id
        progress.run_context_id = records.run_context_id
        progress.root_execution_id = records.root_execution_id
        self._store.save_run(run)

    def _start_task(self, run: Run, spec: PipelineSpec, task: TaskProgress, now: float) -> None:
        definition = spec.tasks[task.key]
        scenario = self._scenarios.for_run(run)
        behaviour = scenario.task(definition.key, definition.display_name)
        seconds = scenario.task_seconds_for(definition.key, definition.display_name)
        held = bool(behaviour.held)
        if task.command == TaskCommand.RELEASE:
            held = False
            task.command = None
        input_artifacts = [
            (artifact.name, artifact_id)
            for artifact in definition.input_artifacts
            for artifact_id in self._upstream_artifacts(run, artifact.producer_task, artifact.output_key)
        ]
        task.execution_id = self._writer.start_task(
            self._task_run(run, spec, definition),
            definition,
            spec.task_inputs(definition, spec.resolved_parameters(run.parameters)),
            input_artifacts,
        )
        task.state = TaskState.RUNNING
        task.attempt += 1
        task.started_at = now
        task.finished_at = None
        task.ends_at = None if held else now + seconds
        self._store.save_run(run)

    def _finish_task(self, run: Run, spec: PipelineSpec, task: TaskProgress, now: float) -> None:
        definition = spec.tasks[task.key]
        scenario = self._scenarios.for_run(run)
        behaviour = scenario.task(definition.key, definition.display_name)
        succeeded = not behaviour.fails and task.command != TaskCommand.FAIL
        outputs = [
            OutputArtifact(output.name, output.schema_title, metadata)
            for output in definition.output_artifacts
            for metadata in scenario.output_artifacts(definition.key, definition.display_name, output.name)
        ]
        assert task.execution_id is not None
        self._writer.finish_task(
            self._task_run(run, spec, definition),
            definition,
            task.execution_id,
            succeeded=succeeded,
            outputs=outputs,
            log_text=_log_text(definition, succeeded),
        )
        task.state = TaskState.SUCCEEDED if succeeded else TaskState.FAILED
        task.command = None
        task.finished_at = now
        self._store.save_run(run)

    def _finish_run(self, run: Run, *, succeeded: bool, now: float) -> None:
        self._writer.set_run_state(_records(run.progress), succeeded=succeeded)
        run.record_state(RunState.SUCCEEDED if succeeded else RunState.FAILED, int(now))
        run.finished_at = int(now)
        self._store.save_run(run)

    def _upstream_artifacts(self, run: Run, producer: str, output: str) -> list[int]:
        upstream = run.progress.tasks.get(producer)
        if upstream is None or upstream.execution_id is None:
            return []
        return self._writer.output_artifact_ids(upstream.execution_id, output)

    def _task_run(self, run: Run, spec: PipelineSpec, definition: TaskDefinition) -> TaskRun:
        progress = run.progress
        return TaskRun(
            records=_records(progress),
            run_id=run.run_id,
            pipeline_name=spec.pipeline_name,
            pipeline_root=self._pipeline_root(run),
            namespace=_cluster_namespace(run),
            pod_name=f"{progress.workflow_name}-system-container-impl-{zlib.crc32(definition.key.encode())}",
        )

    def _pipeline_root(self, run: Run) -> str:
        return run.pipeline_root or self._default_pipeline_root


def _records(progress: RunProgress) -> RunRecords:
    assert progress.pipeline_context_id is not None
    assert progress.run_context_id is not None
    assert progress.root_execution_id is not None
    return RunRecords(progress.pipeline_context_id, progress.run_context_id, progress.root_execution_id)


def _in_order(progress: RunProgress, spec: PipelineSpec) -> list[TaskProgress]:
    return [progress.tasks[key] for key in spec.order if key in progress.tasks]


def _is_ready(task: TaskProgress, progress: RunProgress, spec: PipelineSpec) -> bool:
    if task.state != TaskState.WAITING:
        return False
    dependencies = spec.tasks[task.key].dependencies
    return all(progress.tasks[dependency].state == TaskState.SUCCEEDED for dependency in dependencies)


def _cluster_namespace(run: Run) -> str:
    # Single-user runs go to the server's own namespace (docs/emulator.md §8).
    return run.namespace or "kubeflow"


def _log_text(definition: TaskDefinition, succeeded: bool) -> str:
    outcome = "completed" if succeeded else "failed"
    return f"[{definition.display_name}] executor started\n[{definition.display_name}] executor {outcome}\n"
