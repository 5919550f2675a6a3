"""The KFP API server's object store: moto's S3 server (PyPI ``moto[server]``) on loopback.

The API server keeps uploaded pipeline files there and creates its bucket itself; any
access key is accepted.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kfp_devstack import processes
from kfp_devstack.processes import ProcessRecord


@dataclass
class MotoS3Server(processes.LocalServer):
    work_dir: Path
    port: int | None = None
    process: ProcessRecord | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        def argv(new_port: bool) -> list[str]:
            if self.port is None or new_port:
                self.port = processes.free_port()
            return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._child, self.process = processes.start_until_ready(
            "moto-s3", argv, self.work_dir / "moto.log", self._serves, timeout=60
        )

    def _serves(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False
