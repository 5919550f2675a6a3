"""The kopf peer (``bench.kopf_peer``): the floor's behaviour as a kopf operator, side by side.

Burst: the same N Runs, timed exactly as the operator's burst (the same watch, ``t0`` and
creation thread pool); CPU of the peer process over the burst; its API server requests by
method (it counts them itself); its peak RSS.

Memory: its RSS ready in an empty namespace, and with the M completed Runs of the memory
scenario, once it has gone through them (kopf has never seen them, so it records its last
handled state in an annotation of each: a write per Run). This runs after the operator's
restart, so that the operator is measured on Runs kopf never touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import procstat
from bench.runs import create_runs, names, run_spec
from bench.scenarios.common import Context, percentiles, wait_for_runs
from bench.watcher import RunWatcher
from kfp_devstack.binaries import PROJECT_ROOT
from kfp_devstack.examples import PENGUIN_EXPERIMENT, PENGUIN_VERSION
from kfp_devstack.waiting import wait_until


@dataclass
class PeerBurstResult:
    runs: int
    namespace: str
    workers: int
    all_submitted_seconds: float
    all_completed_seconds: float
    span_seconds: float  # t0 -> the peer made no more requests
    submission_latency_seconds: dict[str, float]
    api_requests: dict[str, int]  # by method
    api_reads_per_run: float
    api_writes_per_run: float
    kfp_calls_per_run: float
    cpu_seconds: float
    cpu_ms_per_run: float
    peak_rss_bytes: int


@dataclass
class PeerMemoryResult:
    cached_runs: int
    rss_empty_bytes: int
    rss_cached_bytes: int
    rss_bytes_per_run: float
    seconds_to_quiet_with_m: float  # start -> no request for a while, over the M Runs
    api_requests_with_m: dict[str, int]  # what going through the M Runs cost, by method
    kfp_calls_with_m: int


class PeerProcess:
    def __init__(self, ctx: Context, name: str, namespace: str, operator_config: dict[str, Any]) -> None:
        stack = ctx.stack
        assert stack.penguin is not None
        self.counts_file = ctx.work_dir / f"kopf-{name}-counts.json"
        self.log = ctx.work_dir / f"kopf-{name}.log"
        self.started_at = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.kopf_peer",
                    f"--counts={self.counts_file}",
                    f"--kubeconfig={stack.kubeconfig}",
                    f"--namespace={namespace}",
                    f"--kfp={stack.kfp_url}",
                    f"--pipeline-id={stack.penguin.pipeline_id}",
                    f"--version-id={stack.penguin.version_id}",
                    f"--version-name={PENGUIN_VERSION}",
                    f"--experiment-id={stack.experiment_id}",
                    f"--experiment-name={PENGUIN_EXPERIMENT}",
                    f"--workers={int(operator_config['workers'])}",
                    f"--poll-interval={float(operator_config['poll_interval'])}",
                    f"--qps={float(operator_config['kube']['qps'])}",
                    f"--burst={int(operator_config['kube']['burst'])}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        wait_until(
            self._running, timeout=120, message=lambda: f"the kopf peer to start; log:\n{self._tail()}"
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def counts(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.counts_file.read_text()))
        except (OSError, ValueError):
            return {}

    def wait_quiet(self, *, quiet_seconds: float, timeout: float) -> dict[str, int]:
        """Waits until the peer made no request for ``quiet_seconds`` (the counts file is
        rewritten every half second); returns the counts."""
        last: list[Any] = [None, time.monotonic()]

        def quiet() -> dict[str, int] | None:
            counts = self.counts()
            if counts != last[0]:
                last[0], last[1] = counts, time.monotonic()
                return None
            return counts if time.monotonic() - last[1] >= quiet_seconds else None

        return wait_until(quiet, timeout=timeout, interval=0.25, message="the kopf peer to go quiet")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _running(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the kopf peer exited with {self.process.returncode}:\n{self._tail()}")
        return "kopf peer: running" in self.log.read_text(errors="replace") and self.counts_file.exists()

    def _tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""


def run_peer_burst(ctx: Context, operator_config: dict[str, Any]) -> PeerBurstResult:
    n = ctx.options.runs
    namespace = ctx.namespace("kopf")
    watcher = RunWatcher(ctx.kube, namespace).start()
    peer = PeerProcess(ctx, "burst", namespace, operator_config)
    try:
        run_names = names("kopf", n)
        timeout = ctx.timeout(n)
        peer.wait_quiet(quiet_seconds=ctx.options.quiet_seconds, timeout=timeout)
        requests_before = peer.counts()
        calls_before = ctx.emulator.calls()
        pids = ctx.process_ids(kopf=peer.pid)
        cpu_before = procstat.cpu_by_process(pids)
        t0 = time.monotonic()
        created = create_runs(ctx.kube, namespace, run_names, run_spec(), threads=ctx.options.create_threads)
        submitted = wait_for_runs(watcher, run_names, "submitted", timeout=timeout)
        completed = wait_for_runs(watcher, run_names, "completed", timeout=timeout)
        requests_after = peer.wait_quiet(quiet_seconds=ctx.options.quiet_seconds, timeout=timeout)
        span = time.monotonic() - t0
        cpu_after = procstat.cpu_by_process(pids)
        calls_after = ctx.emulator.calls()
        sample = procstat.sample(peer.pid)
    finally:
        peer.stop()
        watcher.stop()
    requests = {m: requests_after.get(m, 0) - requests_before.get(m, 0) for m in requests_after}
    reads = requests.get("GET", 0)
    writes = sum(count for method, count in requests.items() if method != "GET")
    calls = sum(calls_after.get(r, 0) - calls_before.get(r, 0) for r in calls_after)
    cpu = procstat.cpu_delta(cpu_before, cpu_after)["kopf"]
    return PeerBurstResult(
        runs=n,
        namespace=namespace,
        workers=int(operator_config["workers"]),
        all_submitted_seconds=round(max(t.submitted for t in submitted.values()) - t0, 3),
        all_completed_seconds=round(max(t.completed for t in completed.values()) - t0, 3),
        span_seconds=round(span, 3),
        submission_latency_seconds={
            key: round(value, 3)
            for key, value in percentiles(
                [submitted[name].submitted - created[name] for name in run_names]
            ).items()
        },
        api_requests=requests,
        api_reads_per_run=round(reads / n, 3),
        api_writes_per_run=round(writes / n, 3),
        kfp_calls_per_run=round(calls / n, 3),
        cpu_seconds=round(cpu, 2),
        cpu_ms_per_run=round(cpu * 1000 / n, 2),
        peak_rss_bytes=sample.hwm_bytes,
    )


def measure_peer_memory(
    ctx: Context, operator_config: dict[str, Any], cached_namespace: str
) -> PeerMemoryResult:
    m = ctx.options.cache_runs
    empty = PeerProcess(ctx, "empty", ctx.namespace("kopf-empty"), operator_config)
    try:
        empty.wait_quiet(quiet_seconds=ctx.options.quiet_seconds, timeout=60)
        rss_empty = procstat.sample(empty.pid).rss_bytes
    finally:
        empty.stop()
    ctx.emulator.reset_calls()
    cached = PeerProcess(ctx, "cached", cached_namespace, operator_config)
    try:
        # kopf answers each Run it has never seen with an annotation patch; quiet once done.
        quiet = max(3.0, ctx.options.quiet_seconds)
        counts = cached.wait_quiet(quiet_seconds=quiet, timeout=ctx.timeout(m))
        seconds = time.monotonic() - cached.started_at - quiet
        rss_cached = procstat.sample(cached.pid).rss_bytes
        kfp_calls = sum(ctx.emulator.calls().values())
    finally:
        cached.stop()
    return PeerMemoryResult(
        cached_runs=m,
        rss_empty_bytes=rss_empty,
        rss_cached_bytes=rss_cached,
        rss_bytes_per_run=round((rss_cached - rss_empty) / m, 1),
        seconds_to_quiet_with_m=round(seconds, 3),
        api_requests_with_m=counts,
        kfp_calls_with_m=kfp_calls,
    )
