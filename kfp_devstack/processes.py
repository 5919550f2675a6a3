"""Starting and stopping the stack's server processes.

Each server runs in its own session (so a Ctrl-C in the terminal that ran
``kfp-devstack up`` does not take it down) with its output in a log file. A
process is identified by its pid *and* its start time, so ``down`` never
signals an unrelated process that happens to reuse a recorded pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from kfp_devstack.waiting import wait_until


class ProcessFailed(RuntimeError):
    """A server process exited, or did not become ready, during start-up."""


@dataclass(frozen=True)
class ProcessRecord:
    """What is needed to find a started process again, possibly from another invocation."""

    name: str
    pid: int
    start_time: int
    log: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(name=data["name"], pid=data["pid"], start_time=data["start_time"], log=data["log"])

    def is_running(self) -> bool:
        return _start_time(self.pid) == self.start_time


def free_port() -> int:
    """Returns a loopback port that was free a moment ago (callers retry on the rare race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    start_time = wait_until(lambda: _start_time(process.pid), timeout=5, message=f"{name} to appear in /proc")
    return process, ProcessRecord(name=name, pid=process.pid, start_time=start_time, log=str(log))


def stop(record: ProcessRecord, *, timeout: float = 15.0) -> None:
    """Stops the process with SIGTERM, then SIGKILL after ``timeout``; a no-op if it is gone."""
    if not record.is_running():
        return
    _signal(record.pid, signal.SIGTERM)
    try:
        wait_until(lambda: not record.is_running(), timeout=timeout, message=f"{record.name} to exit")
    except TimeoutError:
        _signal(record.pid, signal.SIGKILL)
        wait_until(lambda: not record.is_running(), timeout=5, message=f"{record.name} to be killed")
    _reap(record.pid)


def kill(record: ProcessRecord) -> None:
    """Kills the process at once, as a crash would."""
    if record.is_running():
        _signal(record.pid, signal.SIGKILL)
        wait_until(lambda: not record.is_running(), timeout=5, message=f"{record.name} to be killed")
    _reap(record.pid)


def ensure_alive(process: subprocess.Popen[bytes], record: ProcessRecord) -> None:
    """Raises with the tail of the log if the process has exited."""
    if process.poll() is not None:
        raise ProcessFailed(
            f"{record.name} exited with code {process.returncode} during start-up; "
            f"last lines of {record.log}:\n{log_tail(Path(record.log))}"
        )


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat), if it runs.

    A zombie counts as gone: it has exited and only waits to be reaped.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collects the exit status if the process is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


START_ATTEMPTS = 3


def start_until_ready(
    name: str,
    argv_for: Callable[[bool], Sequence[str]],
    log: Path,
    ready: Callable[[], bool],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Starts a server and waits until ``ready()``.

    Ports are picked free before the server binds them, so another process may take one in
    between; the server then exits, and it is started again with ``argv_for(True)``, which
    picks new ports (the first attempt gets ``argv_for(False)``).
    """
    for attempt in range(START_ATTEMPTS):
        child, record = start(name, argv_for(attempt > 0), log, env=env, cwd=cwd)
        try:
            wait_until(
                lambda child=child, record=record: ensure_alive(child, record) or ready(),
                timeout=timeout,
                message=f"{name} to serve",
            )
            return child, record
        except ProcessFailed:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class ServerProcess:
    """Stop, kill and liveness for a component that keeps its started process in ``process``."""

    process: ProcessRecord | None

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def kill(self) -> None:
        """Stops the process at once, as an outage or a crash would."""
        if self.process is not None:
            kill(self.process)
            self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()


class LocalServer(ServerProcess):
    """A server process with a work directory and a loopback port, recorded in the stack's state
    file as both plus its process record."""

    work_dir: Path
    port: int | None

    def to_json(self) -> dict[str, Any]:
        assert self.process is not None
        return {"workDir": str(self.work_dir), "port": self.port, "process": self.process.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(  # type: ignore[call-arg]  # the dataclass subclasses take these fields
            work_dir=Path(data["workDir"]),
            port=data["port"],
            process=ProcessRecord.from_json(data["process"]),
        )
