"""A NATS server with JetStream on loopback, for run-completion events."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.js.errors import NotFoundError

from kfp_devstack import processes
from kfp_devstack.processes import ProcessRecord
from kfp_devstack.waiting import wait_until


class NatsUnavailable(RuntimeError):
    """nats-server is not installed."""


def nats_server_binary() -> str:
    binary = shutil.which("nats-server")
    if binary is None:
        raise NatsUnavailable("nats-server is not installed (Debian: apt-get install nats-server)")
    return binary


@dataclass
class NatsServer:
    work_dir: Path
    port: int | None = None
    process: ProcessRecord | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        for attempt in range(3):
            if self.port is None or attempt > 0:
                self.port = processes.free_port()
            argv = [
                nats_server_binary(),
                "--addr=127.0.0.1",
                f"--port={self.port}",
                "--jetstream",
                f"--store_dir={self.work_dir / 'jetstream'}",
            ]
            self._child, self.process = processes.start("nats-server", argv, self.work_dir / "nats.log")
            try:
                wait_until(
                    lambda: processes.ensure_alive(self._child, self.process) or self._accepts(),
                    timeout=15,
                    message="nats-server to accept connections",
                )
                return
            except processes.ProcessFailed:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process)
            self.process = None

    def kill(self) -> None:
        """Stops the server at once, as an outage would."""
        if self.process is not None:
            processes.kill(self.process)
            self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def to_json(self) -> dict[str, Any]:
        assert self.process is not None
        return {"workDir": str(self.work_dir), "port": self.port, "process": self.process.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NatsServer:
        return cls(
            work_dir=Path(data["workDir"]),
            port=data["port"],
            process=ProcessRecord.from_json(data["process"]),
        )


def ensure_stream(url: str, name: str, subjects: list[str]) -> None:
    """Creates the JetStream stream that captures run-completion events, unless it exists."""

    async def ensure() -> None:
        client = await nats.connect(url, connect_timeout=5)
        try:
            jetstream = client.jetstream()
            try:
                await jetstream.stream_info(name)
            except NotFoundError:
                await jetstream.add_stream(name=name, subjects=subjects)
        finally:
            await client.close()

    asyncio.run(ensure())
