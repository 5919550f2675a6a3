"""Floor: the same N Runs submitted and completed by ``bench.floor`` instead of the operator.

It runs as its own process with the operator's ``workers``, ``pollInterval`` and
client-side QPS limit (none by default), against a fresh namespace, and is timed
exactly as the burst is (the same watch, the same ``t0``, the same creation thread
pool), so each burst time divided by the matching floor time says how far the
operator is from the least any controller could do on this machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procstat
from bench.runs import create_runs, names, run_spec
from bench.scenarios.common import Context, per_run, percentiles, wait_for_runs
from bench.watcher import RunWatcher
from kfp_devstack.binaries import PROJECT_ROOT
from kfp_devstack.examples import PENGUIN_EXPERIMENT, PENGUIN_VERSION
from kfp_devstack.waiting import wait_until


@dataclass
class FloorResult:
    runs: int
    namespace: str
    workers: int
    poll_interval_seconds: float
    kube_qps: float
    kube_burst: int
    create_seconds: float
    all_submitted_seconds: float
    all_completed_seconds: float
    submission_latency_seconds: dict[str, float]
    kfp_calls_per_run: float
    kfp_calls_per_run_by_route: dict[str, float]
    cpu_seconds: float  # utime + stime of the floor process over the burst
    cpu_ms_per_run: float
    cpu_seconds_by_process: dict[str, float]  # the floor, API server, etcd, emulator...


def run_floor(ctx: Context, operator_config: dict[str, Any]) -> FloorResult:
    """Runs the floor with the ``workers``, ``poll_interval`` and ``kube`` settings of the
    operator's effective configuration."""
    n = ctx.options.runs
    stack = ctx.stack
    assert stack.penguin is not None
    namespace = ctx.namespace("floor")
    watcher = RunWatcher(ctx.kube, namespace).start()
    workers = int(operator_config["workers"])
    poll_interval = float(operator_config["poll_interval"])
    qps, burst = float(operator_config["kube"]["qps"]), int(operator_config["kube"]["burst"])
    log = ctx.work_dir / "floor.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.floor",
                f"--kubeconfig={stack.kubeconfig}",
                f"--namespace={namespace}",
                f"--kfp={stack.kfp_url}",
                f"--pipeline-id={stack.penguin.pipeline_id}",
                f"--version-id={stack.penguin.version_id}",
                f"--version-name={PENGUIN_VERSION}",
                f"--experiment-id={stack.experiment_id}",
                f"--experiment-name={PENGUIN_EXPERIMENT}",
                f"--workers={workers}",
                f"--poll-interval={poll_interval}",
                f"--qps={qps}",
                f"--burst={burst}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
    try:
        wait_until(
            lambda: _running(process, log),
            timeout=60,
            message=lambda: f"the floor to start; log:\n{log.read_text(errors='replace')[-2000:]}",
        )
        run_names = names("floor", n)
        timeout = ctx.timeout(n)
        calls_before = ctx.emulator.calls()
        pids = ctx.process_ids(floor=process.pid)
        cpu_before = procstat.cpu_by_process(pids)
        t0 = time.monotonic()
        created = create_runs(ctx.kube, namespace, run_names, run_spec(), threads=ctx.options.create_threads)
        create_seconds = max(created.values()) - t0
        submitted = wait_for_runs(watcher, run_names, "submitted", timeout=timeout)
        completed = wait_for_runs(watcher, run_names, "completed", timeout=timeout)
        cpu_after = procstat.cpu_by_process(pids)
        calls_after = ctx.emulator.calls()
    finally:
        process.terminate()
        process.wait(timeout=30)
        watcher.stop()
    calls = {route: calls_after.get(route, 0) - calls_before.get(route, 0) for route in calls_after}
    cpu_by_process = procstat.cpu_delta(cpu_before, cpu_after)
    cpu = cpu_by_process["floor"]
    return FloorResult(
        runs=n,
        namespace=namespace,
        workers=workers,
        poll_interval_seconds=poll_interval,
        kube_qps=qps,
        kube_burst=burst,
        create_seconds=round(create_seconds, 3),
        all_submitted_seconds=round(max(t.submitted for t in submitted.values()) - t0, 3),
        all_completed_seconds=round(max(t.completed for t in completed.values()) - t0, 3),
        submission_latency_seconds={
            key: round(value, 3)
            for key, value in percentiles(
                [submitted[name].submitted - created[name] for name in run_names]
            ).items()
        },
        kfp_calls_per_run=round(sum(calls.values()) / n, 3),
        kfp_calls_per_run_by_route=per_run(dict(calls), n),
        cpu_seconds=round(cpu, 2),
        cpu_ms_per_run=round(cpu * 1000 / n, 2),
        cpu_seconds_by_process=cpu_by_process,
    )


def _running(process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the floor exited with {process.returncode}:\n{log.read_text(errors='replace')}")
    return "floor: running" in log.read_text(errors="replace")
