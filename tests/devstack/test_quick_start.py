"""The README's quick start, step by step: the stack, the examples, the operator, the example Run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from kfp_devstack.binaries import PROJECT_ROOT
from kfp_devstack.processes import free_port
from kfp_devstack.waiting import wait_until

TIMEOUT = 90.0


def test_the_example_run_completes_against_the_local_stack(tmp_path: Path, devstack) -> None:
    root = tmp_path / "dev"
    devstack(root, "up")
    operator = None
    try:
        devstack(root, "examples")
        # The generated configuration, on free ports so the test does not collide with `make dev`.
        config = yaml.safe_load((root / "operator.yaml").read_text())
        config["metrics"] = {"bindAddress": f"127.0.0.1:{free_port()}"}
        config["health"] = {"bindAddress": f"127.0.0.1:{free_port()}"}
        config_file = tmp_path / "operator.yaml"
        config_file.write_text(yaml.safe_dump(config))
        log = (tmp_path / "operator.log").open("wb")
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kfp_operator",
                f"--config={config_file}",
                f"--kubeconfig={root / 'kubeconfig'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        kubectl = [str(root / "bin" / "kubectl"), f"--kubeconfig={root / 'kubeconfig'}"]

        created = subprocess.run(
            [*kubectl, "create", "-f", str(PROJECT_ROOT / "examples" / "run.yaml"), "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        name = created.split("/")[-1]

        def columns() -> list[str] | None:
            table = subprocess.run(
                [*kubectl, "get", "runs", name], capture_output=True, text=True, check=True
            )
            row = table.stdout.splitlines()[1].split()
            return row if row[4:5] == ["Succeeded"] else None

        row = wait_until(columns, timeout=TIMEOUT, interval=0.5, message=f"Run {name} to succeed")
        assert row[2] == "Succeeded"  # SynchronizationState: submitted
        assert row[1].startswith("kfp:")

        status = json.loads(
            subprocess.run(
                [*kubectl, "get", "run", name, "-o", "json"], capture_output=True, text=True, check=True
            ).stdout
        )["status"]
        [artifact] = status["artifacts"]
        assert artifact["name"] == "serving-model"

        def published() -> list[dict]:
            lines = devstack(root, "events").splitlines()
            events = [json.loads(line) for line in lines]
            return [e for e in events if e["data"]["runName"] == f"default/{name}"]

        [event] = wait_until(published, timeout=TIMEOUT, message="the event on NATS")
        assert event["data"]["status"] == "succeeded"
        assert event["data"]["artifacts"] == [artifact]

        # The example Pipeline built from an image: compiled by the stack's Job executor.
        def typed_parameters_ready() -> bool:
            ready = subprocess.run(
                [
                    *kubectl,
                    "get",
                    "mlp",
                    "typed-parameters",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            return ready.stdout == "True"

        wait_until(
            typed_parameters_ready, timeout=TIMEOUT, interval=0.5, message="typed-parameters to be compiled"
        )
    finally:
        if operator is not None:
            operator.send_signal(signal.SIGTERM)
            assert operator.wait(timeout=60) == 0
        devstack(root, "down")
