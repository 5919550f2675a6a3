"""The KFP API server's database: a throwaway MariaDB server on loopback.

KFP 2.17 speaks only the MySQL dialect. No Go module or PyPI package ships a MySQL
server that fits (go-mysql-server is not an approved release here, and the PyPI
packages that start a ``mysqld`` expect one installed), so the server is Debian's
``mariadb-server-core``: ``mariadbd`` and nothing else, no service scripts. When it is
missing it is installed here, as root or through sudo, so ``make test`` asks nothing of
the developer.

The server runs with ``--skip-grant-tables`` on an empty data directory: no
``mariadb-install-db`` step (that would need the client package), no users and no
passwords; it listens on loopback only and its data is disposable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kfp_devstack import processes
from kfp_devstack.processes import ProcessRecord

DEBIAN_PACKAGE = "mariadb-server-core"
BINARY_NAMES = ("mariadbd", "mysqld")
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")


class MariaDbUnavailable(RuntimeError):
    """mariadbd is not installed and could not be installed."""


def mariadbd_binary(*, install: bool = True) -> str:
    """The path of ``mariadbd``, installing Debian's package first when it is missing."""
    found = _find()
    if found is None and install:
        _install()
        found = _find()
    if found is None:
        raise MariaDbUnavailable(
            f"mariadbd is not installed (Debian: apt-get install {DEBIAN_PACKAGE}) and could not be installed"
        )
    return found


def _find() -> str | None:
    for name in BINARY_NAMES:
        found = shutil.which(name) or next(
            (str(Path(d) / name) for d in SBIN_DIRS if (Path(d) / name).is_file()), None
        )
        if found:
            return found
    return None


def _install() -> None:
    if shutil.which("apt-get") is None:
        raise MariaDbUnavailable("mariadbd is not installed and this machine has no apt-get to install it")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", DEBIAN_PACKAGE]
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # The package lists may be missing or stale on a fresh machine: refresh them once.
        subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MariaDbUnavailable(f"`{' '.join(install)}` failed:\n{result.stderr[-2000:]}")


@dataclass
class MariaDbServer(processes.LocalServer):
    """A MariaDB server whose data, socket and log live under ``work_dir``."""

    work_dir: Path
    port: int | None = None
    process: ProcessRecord | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.work_dir / "mariadb.log"

    def start(self) -> None:
        binary = mariadbd_binary()
        data = self.work_dir / "data"
        data.mkdir(parents=True, exist_ok=True)

        def argv(new_port: bool) -> list[str]:
            if self.port is None or new_port:
                self.port = processes.free_port()
            return [
                binary,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={self.work_dir / 'mariadb.sock'}",
                f"--pid-file={self.work_dir / 'mariadb.pid'}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                *(["--user=root"] if os.geteuid() == 0 else []),
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--skip-log-bin",
                # Throwaway data: durability is not worth the fsyncs, memory is worth keeping small.
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-buffer-pool-size=64M",
                "--performance-schema=off",
                # KFP's config asks for this; the server would otherwise cut long GROUP_CONCATs.
                "--group-concat-max-len=4194304",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_uca1400_ai_ci",  # nearest to MySQL 8's utf8mb4_0900_ai_ci
            ]

        self._child, self.process = processes.start_until_ready(
            "mariadb", argv, self.log, self._accepts, timeout=60
        )

    def _accepts(self) -> bool:
        # The server speaks first: a handshake packet whose payload starts with protocol version 10.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(5)[4:5] == b"\x0a"
        except OSError:
            return False
