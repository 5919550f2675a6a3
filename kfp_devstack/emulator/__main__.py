"""Runs the emulator as a process: ``python -m kfp_devstack.emulator --state-dir DIR ...``.

Once both services listen it writes ``DIR/endpoints.json``
(``{"kfp": "http://host:port", "mlmd": {"host": ..., "port": ...}, "pid": ...}``),
atomically, so a launcher can wait for the file. It logs to stderr and exits cleanly
on SIGTERM or SIGINT, removing the endpoints file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from kfp_devstack.emulator.config import EmulatorConfig
from kfp_devstack.emulator.emulator import Emulator

LOG = logging.getLogger("kfp_devstack.emulator")
ENDPOINTS_FILE = "endpoints.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kfp_devstack.emulator",
        description="A local KFP v2beta1 API emulator backed by a real ML Metadata store served over gRPC.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="KFP HTTP API port (default: pick a free one)")
    parser.add_argument("--mlmd-port", type=int, default=0, help="MLMD gRPC port (default: pick a free one)")
    parser.add_argument("--state-dir", type=Path, required=True, help="directory for the emulator's state")
    parser.add_argument("--multi-user", action="store_true", help="behave like a multi-user KFP installation")
    parser.add_argument(
        "--accept-token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="a bearer token accepted in multi-user mode (repeatable)",
    )
    parser.add_argument("--token-file", type=Path, help="file of accepted bearer tokens, one per line")
    parser.add_argument("--task-seconds", type=float, default=0.5, help="default time a task runs (seconds)")
    parser.add_argument("--pending-seconds", type=float, default=0.5, help="default time a run is PENDING")
    parser.add_argument(
        "--cancel-seconds", type=float, default=0.2, help="time a terminated run is CANCELING"
    )
    parser.add_argument(
        "--real-kfp-url",
        help="a real KFP API server to stand in front of; its Workflows are driven (docs/emulator.md §15)",
    )
    parser.add_argument("--kubeconfig", type=Path, help="the real KFP server's cluster (with --real-kfp-url)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = EmulatorConfig(
            state_dir=args.state_dir,
            host=args.host,
            port=args.port,
            mlmd_port=args.mlmd_port,
            multi_user=args.multi_user,
            accepted_tokens=frozenset(args.accept_token),
            token_file=args.token_file,
            pending_seconds=args.pending_seconds,
            task_seconds=args.task_seconds,
            cancel_seconds=args.cancel_seconds,
            real_kfp_url=args.real_kfp_url,
            kubeconfig=args.kubeconfig,
        )
    except ValueError as err:
        LOG.error("%s", err)
        return 2

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    emulator = Emulator(config).start()
    endpoints = config.state_dir / ENDPOINTS_FILE
    try:
        _write_endpoints(endpoints, emulator)
        LOG.info("emulator ready: KFP %s, MLMD %s:%d", emulator.url, emulator.mlmd_host, emulator.mlmd_port)
        stopping.wait()
        LOG.info("stopping")
    finally:
        endpoints.unlink(missing_ok=True)
        emulator.stop()
    return 0


def _write_endpoints(path: Path, emulator: Emulator) -> None:
    document = {
        "kfp": emulator.url,
        "mlmd": {"host": emulator.mlmd_host, "port": emulator.mlmd_port},
        "pid": os.getpid(),
    }
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
