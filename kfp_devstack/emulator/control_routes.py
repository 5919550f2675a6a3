"""The emulator's control API under ``/emulator/v1``: scenarios, run commands, faults, MLMD, counters.

Not part of KFP: these routes are neither counted nor subject to faults or
authentication. Errors are ``{"error": "<message>"}`` with 400, 404 or 409.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from kfp_devstack.emulator.call_counter import CallCounter
from kfp_devstack.emulator.faults import Fault, FaultBook, FaultError
from kfp_devstack.emulator.http_server import Request, Response, Router
from kfp_devstack.emulator.mlmd_service import MetadataGrpcService
from kfp_devstack.emulator.models import Run, TaskState
from kfp_devstack.emulator.progression import RunEngine, TaskFinishedError, UnknownRunError, UnknownTaskError
from kfp_devstack.emulator.scenario_book import ScenarioBook
from kfp_devstack.emulator.scenarios import Scenario, ScenarioError
from kfp_devstack.emulator.store import Store

PREFIX = "/emulator/v1"


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ControlApi:
    def __init__(
        self,
        *,
        store: Store,
        scenarios: ScenarioBook,
        engine: RunEngine,
        faults: FaultBook,
        kfp_calls: CallCounter,
        mlmd_calls: CallCounter,
        mlmd: MetadataGrpcService,
        find_run: Callable[[str], Run | None] | None = None,
    ) -> None:
        self._store = store
        self._scenarios = scenarios
        self._engine = engine
        self._faults = faults
        self._kfp_calls = kfp_calls
        self._mlmd_calls = mlmd_calls
        self._mlmd = mlmd
        # With a real backend a run's shadow may not exist yet: finding it adopts its Workflow.
        self._find_run = find_run or self._stored_run

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", "/scenarios", self.list_scenarios),
            ("PUT", "/scenarios/default", self.script_default),
            ("DELETE", "/scenarios/default", self.script_default),
            ("PUT", "/scenarios/pipelines/{name}", self.script_pipeline),
            ("DELETE", "/scenarios/pipelines/{name}", self.script_pipeline),
            ("PUT", "/scenarios/runs/{run_id}", self.script_run),
            ("DELETE", "/scenarios/runs/{run_id}", self.script_run),
            ("POST", "/runs/{run_id}:release", self.release),
            ("POST", "/runs/{run_id}:fail", self.fail),
            ("GET", "/runs/{run_id}/progress", self.progress),
            ("GET", "/faults", self.list_faults),
            ("POST", "/faults", self.add_fault),
            ("DELETE", "/faults", self.clear_faults),
            ("POST", "/mlmd:down", self.mlmd_down),
            ("POST", "/mlmd:up", self.mlmd_up),
            ("GET", "/calls/kfp", self.kfp_calls),
            ("GET", "/calls/mlmd", self.mlmd_calls),
            ("DELETE", "/calls", self.reset_calls),
        ]
        for method, path, handler in routes:
            router.add(method, PREFIX + path, _answering_errors(handler), kind="control")

    # --- scenarios -----------------------------------------------------------------------------

    def list_scenarios(self, request: Request) -> Response:
        return Response(200, {key: scenario.to_json() for key, scenario in self._scenarios.scripts().items()})

    def script_default(self, request: Request) -> Response:
        return self._script(request, self._scenarios.set_default)

    def script_pipeline(self, request: Request) -> Response:
        name = request.params["name"]
        return self._script(request, lambda scenario: self._scenarios.script_pipeline(name, scenario))

    def script_run(self, request: Request) -> Response:
        run_id = self._run(request).run_id
        return self._script(request, lambda scenario: self._scenarios.script_run(run_id, scenario))

    def _script(self, request: Request, setter: Callable[[Scenario | None], None]) -> Response:
        scenario = None if request.method == "DELETE" else _scenario(request)
        setter(scenario)
        self._engine.notify()  # a pending run may now be due, or no longer held
        return Response(200, scenario.to_json() if scenario is not None else {})

    # --- runs ------------------------------------------------------------------------------------

    def release(self, request: Request) -> Response:
        task = _json_body(request).get("task")
        if task is not None and not isinstance(task, str):
            raise _ControlError(400, "task must be a task key or display name")
        self._find_run(request.params["run_id"])
        with _task_errors():
            return Response(200, {"released": self._engine.release(request.params["run_id"], task)})

    def fail(self, request: Request) -> Response:
        task = _json_body(request).get("task")
        if not isinstance(task, str) or not task:
            raise _ControlError(400, "name the task to fail")
        self._find_run(request.params["run_id"])
        with _task_errors():
            return Response(200, {"failed": self._engine.fail(request.params["run_id"], task)})

    def progress(self, request: Request) -> Response:
        run = self._run(request)
        with self._store.lock:
            spec = self._store.spec(run.spec_digest)
            tasks = {
                key: {
                    "display_name": spec.tasks[key].display_name,
                    "state": task.state,
                    "attempt": task.attempt,
                    "held": task.state == TaskState.RUNNING and task.ends_at is None,
                    "execution_id": task.execution_id,
                }
                for key, task in run.progress.tasks.items()
            }
            return Response(200, {"run_id": run.run_id, "state": run.state, "tasks": tasks})

    def _stored_run(self, run_id: str) -> Run | None:
        with self._store.lock:
            return self._store.runs.get(run_id)

    def _run(self, request: Request) -> Run:
        run_id = request.params["run_id"]
        run = self._find_run(run_id)
        if run is None:
            raise _ControlError(404, f"run {run_id} not found")
        return run

    # --- faults, MLMD and counters --------------------------------------------------------------

    def list_faults(self, request: Request) -> Response:
        return Response(200, {fault_id: fault.to_json() for fault_id, fault in self._faults.active().items()})

    def add_fault(self, request: Request) -> Response:
        try:
            fault = Fault.from_json(_json_body(request))
        except FaultError as err:
            raise _ControlError(400, str(err)) from None
        return Response(200, {"id": self._faults.add(fault)})

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return Response(200, {})

    def mlmd_down(self, request: Request) -> Response:
        self._mlmd.set_available(False)
        return Response(200, {"available": False})

    def mlmd_up(self, request: Request) -> Response:
        self._mlmd.set_available(True)
        return Response(200, {"available": True})

    def kfp_calls(self, request: Request) -> Response:
        return Response(200, self._kfp_calls.snapshot())

    def mlmd_calls(self, request: Request) -> Response:
        return Response(200, self._mlmd_calls.snapshot())

    def reset_calls(self, request: Request) -> Response:
        self._kfp_calls.reset()
        self._mlmd_calls.reset()
        return Response(200, {})


@contextlib.contextmanager
def _task_errors() -> Iterator[None]:
    try:
        yield
    except (UnknownRunError, UnknownTaskError) as err:
        raise _ControlError(404, str(err)) from None
    except TaskFinishedError as err:
        raise _ControlError(409, str(err)) from None


def _scenario(request: Request) -> Scenario:
    try:
        return Scenario.from_json(_json_body(request))
    except ScenarioError as err:
        raise _ControlError(400, str(err)) from None


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except json.JSONDecodeError as err:
        raise _ControlError(400, f"the body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise _ControlError(400, "the body must be a JSON object")
    return body


def _answering_errors(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        try:
            return handler(request)
        except _ControlError as err:
            return Response(err.status, {"error": err.message})

    return handle
