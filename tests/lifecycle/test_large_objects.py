"""The largest Runs the API server stores are handled like any other, and the operator's memory stays
within what the chart requests for it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kfp_devstack.examples import PROJECT_ROOT
from kfp_devstack.waiting import wait_until
from tests.lifecycle.harness import TIMEOUT, World

# etcd keeps at most 1.5 MiB per object: twenty values of the CRD's largest size (64 KiB) fit.
PARAMETERS, VALUE_LENGTH = 20, 65536
RUNS = 10


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def chart_memory_request() -> int:
    values = yaml.safe_load((PROJECT_ROOT / "charts/kfp-operator/values.yaml").read_text())
    request = values["resources"]["requests"]["memory"]
    assert request.endswith("Mi")
    return int(request.removesuffix("Mi")) * 1024 * 1024


def test_the_largest_runs_are_handled_and_memory_stays_within_the_charts_request(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    operator = world.start_operator()
    assert operator.process is not None
    spec = {
        "pipeline": "penguin-pipeline:v1-abcdef",
        "experimentName": "penguin-experiment",
        "runtimeParameters": [
            {"name": f"P{i}", "value": chr(65 + i) * VALUE_LENGTH} for i in range(PARAMETERS)
        ],
    }
    assert len(json.dumps(spec)) > PARAMETERS * VALUE_LENGTH

    names = [world.create_run(spec) for _ in range(RUNS)]

    for name in names:
        # KFP refuses the parameters the pipeline does not declare: the Run fails, and says so
        # within the status's limits, without quoting megabytes back.
        status = world.wait_run(name, lambda s: s.get("synchronizationState") == "Failed", "refused by KFP")
        message = world.condition(name, "Synchronized")["message"]
        assert message.startswith("KFP rejected the run") and len(message) <= 32768
    wait_until(
        lambda: all(world.status(n).get("conditions") for n in names), timeout=TIMEOUT, message="every status"
    )
    assert status["synchronizationState"] == "Failed"
    assert rss_bytes(operator.process.pid) < chart_memory_request()
