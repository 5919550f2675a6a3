"""A typed client for the emulator's control API (``/emulator/v1``).

ctl = EmulatorControl(emulator.url)
ctl.script_pipeline(
    "penguin-pipeline",
    Scenario(tasks={"Pusher": Task(seconds=0.2)},
             artifacts={"Pusher": {"pushed_model": [{"pushed": 1}, {"pushed": 0}]}}),
)
ctl.inject_fault(Fault.error("POST", "/apis/v2beta1/runs", 503, times=2))
ctl.calls()["POST /apis/v2beta1/runs"]
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from kfp_devstack.emulator.faults import Fault
from kfp_devstack.emulator.scenarios import Scenario, Task
from kfp_devstack.waiting import wait_until

__all__ = ["ControlError", "EmulatorControl", "Fault", "Scenario", "Task"]


class ControlError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EmulatorControl:
    def __init__(self, base_url: str, *, timeout: float = 10.0, ca_file: Path | None = None) -> None:
        """``ca_file`` is the CA an emulator serving TLS is checked against."""
        parts = urlsplit(base_url)
        self._base = f"{parts.scheme}://{parts.netloc}/emulator/v1"
        self._timeout = timeout
        self._tls = ssl.create_default_context(cafile=ca_file) if ca_file is not None else None

    # --- scenarios ----------------------------------------------------------------------------

    def script_default(self, scenario: Scenario | None) -> None:
        """What every run does unless its pipeline or the run itself is scripted (``None`` clears)."""
        self._script("/scenarios/default", scenario)

    def script_pipeline(self, name: str, scenario: Scenario | None) -> None:
        """What runs of the KFP pipeline named ``name`` do (``None`` clears)."""
        self._script(f"/scenarios/pipelines/{quote(name, safe='')}", scenario)

    def script_run(self, run_id: str, scenario: Scenario | None) -> None:
        """What one run does from now on; overrides its pipeline's script (``None`` clears)."""
        self._script(f"/scenarios/runs/{quote(run_id, safe='')}", scenario)

    def scenarios(self) -> dict[str, Scenario]:
        return {key: Scenario.from_json(value) for key, value in self._call("GET", "/scenarios").items()}

    # --- runs ------------------------------------------------------------------------------------

    def release(self, run_id: str, task: str | None = None) -> list[str]:
        """Releases a held run (PENDING) and its held tasks, or one task (key or display name)."""
        body = {} if task is None else {"task": task}
        return list(self._call("POST", f"/runs/{quote(run_id, safe='')}:release", body)["released"])

    def fail(self, run_id: str, task: str) -> str:
        """Fails a task now if it is running, or when it starts; returns its key."""
        return str(self._call("POST", f"/runs/{quote(run_id, safe='')}:fail", {"task": task})["failed"])

    def run_progress(self, run_id: str) -> dict[str, Any]:
        """The run's state and, per task key: display_name, state, attempt, held, execution_id."""
        return dict(self._call("GET", f"/runs/{quote(run_id, safe='')}/progress"))

    def wait_for_task(self, run_id: str, task: str, state: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Waits until a task (key or display name) is in ``state`` (WAITING, RUNNING, SUCCEEDED, FAILED)."""

        def current() -> dict[str, Any] | None:
            for key, progress in self.run_progress(run_id)["tasks"].items():
                if task in (key, progress["display_name"]) and progress["state"] == state:
                    return dict(progress, key=key)
            return None

        return wait_until(current, timeout=timeout, message=f"task {task} of run {run_id} to be {state}")

    # --- faults ----------------------------------------------------------------------------------

    def inject_fault(self, fault: Fault) -> str:
        return str(self._call("POST", "/faults", fault.to_json())["id"])

    def faults(self) -> dict[str, Fault]:
        return {key: Fault.from_json(value) for key, value in self._call("GET", "/faults").items()}

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def mlmd_down(self) -> None:
        """Makes every MLMD gRPC call fail with UNAVAILABLE until :meth:`mlmd_up`."""
        self._call("POST", "/mlmd:down")

    def mlmd_up(self) -> None:
        self._call("POST", "/mlmd:up")

    # --- counters --------------------------------------------------------------------------------

    def calls(self) -> dict[str, int]:
        """KFP API calls so far, by ``"<METHOD> <route template>"``."""
        return {key: int(value) for key, value in self._call("GET", "/calls/kfp").items()}

    def mlmd_calls(self) -> dict[str, int]:
        """MLMD gRPC calls so far, by RPC name (``GetContextByTypeAndName`` ...)."""
        return {key: int(value) for key, value in self._call("GET", "/calls/mlmd").items()}

    def reset_calls(self) -> None:
        """Zeroes both the KFP and the MLMD call counters."""
        self._call("DELETE", "/calls")

    # --- transport -------------------------------------------------------------------------------

    def _script(self, path: str, scenario: Scenario | None) -> None:
        if scenario is None:
            self._call("DELETE", path)
        else:
            self._call("PUT", path, scenario.to_json())

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._tls) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            payload = err.read()
            try:
                message = json.loads(payload).get("error", payload.decode())
            except (json.JSONDecodeError, AttributeError):
                message = payload.decode(errors="replace")
            raise ControlError(err.code, message) from None
