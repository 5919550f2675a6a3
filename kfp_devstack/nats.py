"""A NATS server with JetStream on loopback, for run-completion events."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js.errors import NotFoundError

from kfp_devstack import binaries, processes
from kfp_devstack.processes import ProcessRecord


@dataclass
class NatsServer(processes.LocalServer):
    work_dir: Path
    port: int | None = None
    # Further nats-server flags, for example ``--auth=TOKEN`` or ``--tlscert=...``
    options: tuple[str, ...] = ()
    process: ProcessRecord | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        def argv(new_port: bool) -> list[str]:
            if self.port is None or new_port:
                self.port = processes.free_port()
            return [
                str(binaries.locate().nats_server),
                "--addr=127.0.0.1",
                f"--port={self.port}",
                "--jetstream",
                f"--store_dir={self.work_dir / 'jetstream'}",
                *self.options,
            ]

        self._child, self.process = processes.start_until_ready(
            "nats-server", argv, self.work_dir / "nats.log", self._accepts, timeout=15
        )

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(4).startswith(b"INFO")
        except OSError:
            return False


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


def print_events(url: str, subject: str, *, follow: bool, write: Callable[[str], None]) -> None:
    """Writes every message the stream holds for ``subject`` (one JSON document a line), and with
    ``follow`` keeps writing new ones until interrupted."""

    async def read() -> None:
        client = await nats.connect(url, connect_timeout=5)
        try:
            subscription = await client.jetstream().subscribe(subject, ordered_consumer=True)
            while True:
                try:
                    message = await subscription.next_msg(timeout=1 if not follow else 3600)
                except nats.errors.TimeoutError:
                    if follow:
                        continue
                    return
                write(message.data.decode())
        finally:
            await client.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(read())
