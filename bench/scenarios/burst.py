"""Burst: N Runs created at once against the real operator, each run completing in KFP shortly.

Sources of each figure:

* times: the bench's clock (``time.monotonic()``), from just before the first create
  (``t0``) to the watch event that showed the last Run reaching the stage;
* submission latency: per Run, from the moment its create call returned to the watch
  event that first showed its ``status.providerId``;
* API requests: the operator's own ``rest_client_requests_total`` (by method), the
  difference between a scrape before the burst and one after the operator went quiet;
* KFP and MLMD calls: the emulator's call counters (``EmulatorControl.calls()`` and
  ``mlmd_calls()``), reset just before the burst;
* CPU: ``utime + stime`` of the operator process (``/proc/PID/stat``) over the same
  span, and of every other process of the stack (where the machine's time went); the
  operator's by kind of thread from its ``controller_thread_cpu_seconds_total`` (the same
  two scrapes): exact where py-spy's profile samples;
  peak memory: the operator's ``VmHWM`` (``/proc/PID/status``) at the end;
* latencies and worker utilisation: the operator's own histograms
  (``kfp_operator_kfp_request_duration_seconds``, ``controller_runtime_reconcile_time_seconds``):
  utilisation is the run controller's summed reconcile time over ``workers`` x the span;
* duplicates: every KFP run carrying the operator's marker, counted per Run UID;
* Kubernetes Events: the Event objects in the namespace, counted by reason, and those the
  operator dropped (its ``controller_events_dropped_total``, from the same two scrapes).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench import kfp_runs, procstat
from bench.operator import OperatorProcess
from bench.profile import Profiler, summarise
from bench.promtext import Samples
from bench.runs import create_runs, names, run_spec
from bench.scenarios.common import (
    READY_TIMEOUT,
    Context,
    largest_first,
    non_2xx,
    per_run,
    percentiles,
    reads_and_writes,
    requests_by_method,
    wait_for_runs,
    wait_quiet,
)
from bench.watcher import RunWatcher


@dataclass
class BurstResult:
    runs: int
    namespace: str
    operator_ready_seconds: float  # operator start -> /readyz 200 and Lease held, with 0 Runs
    create_seconds: float  # t0 -> the last create call returned
    all_submitted_seconds: float  # t0 -> every Run has status.providerId
    all_completed_seconds: float  # t0 -> every Run has status.completionState
    all_events_delivered_seconds: float  # t0 -> every Run has status.completionEvent.deliveredAt
    span_seconds: float  # t0 -> the operator went quiet: the span the counters and CPU cover
    submission_latency_seconds: dict[str, float]  # create returned -> providerId seen
    completion_states: dict[str, int]
    api_requests: dict[str, float]  # by method, whole burst
    api_reads_per_run: float
    api_writes_per_run: float
    api_failed_requests: dict[str, float]  # by status code
    kfp_calls: dict[str, int]  # by route, whole burst
    kfp_calls_per_run: float
    kfp_calls_per_run_by_route: dict[str, float]
    kfp_failed_requests: dict[str, float]  # the operator's kfp_operator_kfp_requests_total, by code
    mlmd_calls_per_run: float
    mlmd_calls_per_run_by_rpc: dict[str, float]
    submissions: dict[str, float]  # kfp_operator_run_submissions_total by result
    reconcile_errors: dict[str, float]  # controller_runtime_reconcile_errors_total by controller
    operator_cpu_seconds: float
    operator_cpu_ms_per_run: float
    operator_peak_rss_bytes: int
    cpu_seconds_by_process: dict[str, float]  # t0 -> quiet: operator, API server, etcd, emulator...
    kfp_mean_request_ms: dict[str, float]  # the operator's own KFP request latency, by operation
    reconcile_mean_ms: dict[str, float]  # controller_runtime_reconcile_time_seconds, by controller
    run_worker_utilisation: float  # busy time of the run controller's workers / (workers x span)
    exactly_once: dict[str, int]
    kubernetes_events: dict[str, int]  # Event objects in the namespace by reason (N each expected)
    events_dropped: dict[str, float]  # controller_events_dropped_total, by why (queue_full, ...)
    # controller_thread_cpu_seconds_total over the burst per Run, by kind of thread, largest first
    cpu_ms_per_run_by_thread: dict[str, float] = field(default_factory=dict)
    effective_operator_config: dict[str, Any] = field(default_factory=dict)
    # py-spy's samples of the operator over the burst: the functions holding its CPU (None
    # without py-spy); the collapsed stacks are kept next to the JSON.
    profile: dict[str, Any] | None = None
    profile_file: str | None = None


def run_burst(ctx: Context) -> tuple[BurstResult, OperatorProcess, RunWatcher]:
    """Runs the burst; returns with the operator and the watch still running."""
    n = ctx.options.runs
    namespace = ctx.namespace("burst")
    operator = ctx.operator("burst", namespace).start()
    ready_seconds = operator.wait_ready(ctx.kube, timeout=READY_TIMEOUT)
    watcher = RunWatcher(ctx.kube, namespace).start()
    run_names = names("burst", n)
    timeout = ctx.timeout(n)

    # Attached before the counters are read: attaching takes py-spy a moment, and it counts nothing.
    profiler = (
        Profiler(operator.pid, ctx.work_dir / "burst-profile.collapsed", ctx.options.profile_rate)
        if ctx.options.profile
        else None
    )
    ctx.emulator.reset_calls()
    pids = ctx.process_ids(operator=operator.pid)
    metrics_before, process_before = operator.metrics(), operator.sample()
    cpu_before = procstat.cpu_by_process(pids)
    t0 = time.monotonic()
    created = create_runs(ctx.kube, namespace, run_names, run_spec(), threads=ctx.options.create_threads)
    create_seconds = max(created.values()) - t0
    submitted = wait_for_runs(watcher, run_names, "submitted", timeout=timeout)
    completed = wait_for_runs(watcher, run_names, "completed", timeout=timeout)
    delivered = wait_for_runs(watcher, run_names, "delivered", timeout=timeout)
    metrics_after = wait_quiet(operator, timeout=timeout, interval=ctx.options.quiet_seconds)
    span = time.monotonic() - t0
    process_after = operator.sample()
    cpu_after = procstat.cpu_by_process(pids)
    collapsed = profiler.stop() if profiler is not None else None
    kfp_calls = ctx.emulator.calls()
    mlmd_calls = ctx.emulator.mlmd_calls()

    delta = metrics_after.minus(metrics_before)
    by_method = requests_by_method(delta)
    reads, writes = reads_and_writes(by_method)
    kfp_total = sum(kfp_calls.values())
    cpu = process_after.cpu_seconds - process_before.cpu_seconds
    uids = [times.uid for times in completed.values()]
    config = ctx.effective_operator_config(operator)
    busy = delta.total(
        "controller_runtime_reconcile_time_seconds_sum", lambda labels: labels["controller"] == "run"
    )
    result = BurstResult(
        runs=n,
        namespace=namespace,
        operator_ready_seconds=round(ready_seconds, 3),
        create_seconds=round(create_seconds, 3),
        all_submitted_seconds=round(max(t.submitted for t in submitted.values()) - t0, 3),
        all_completed_seconds=round(max(t.completed for t in completed.values()) - t0, 3),
        all_events_delivered_seconds=round(max(t.delivered for t in delivered.values()) - t0, 3),
        span_seconds=round(span, 3),
        submission_latency_seconds=_rounded(
            percentiles([submitted[name].submitted - created[name] for name in run_names])
        ),
        completion_states=dict(Counter(t.completion_state for t in completed.values())),
        api_requests=by_method,
        api_reads_per_run=round(reads / n, 3),
        api_writes_per_run=round(writes / n, 3),
        api_failed_requests=non_2xx(delta, "rest_client_requests_total"),
        kfp_calls=kfp_calls,
        kfp_calls_per_run=round(kfp_total / n, 3),
        kfp_calls_per_run_by_route=per_run(dict(kfp_calls), n),
        kfp_failed_requests=non_2xx(delta, "kfp_operator_kfp_requests_total"),
        mlmd_calls_per_run=round(sum(mlmd_calls.values()) / n, 3),
        mlmd_calls_per_run_by_rpc=per_run(dict(mlmd_calls), n),
        submissions=delta.by_label("kfp_operator_run_submissions_total", "result"),
        reconcile_errors=delta.by_label("controller_runtime_reconcile_errors_total", "controller"),
        operator_cpu_seconds=round(cpu, 2),
        operator_cpu_ms_per_run=round(cpu * 1000 / n, 2),
        operator_peak_rss_bytes=process_after.hwm_bytes,
        cpu_seconds_by_process=procstat.cpu_delta(cpu_before, cpu_after),
        kfp_mean_request_ms=_mean_ms(delta, "kfp_operator_kfp_request_duration_seconds", "operation"),
        reconcile_mean_ms=_mean_ms(delta, "controller_runtime_reconcile_time_seconds", "controller"),
        run_worker_utilisation=round(busy / (config["workers"] * span), 2),
        exactly_once=kfp_runs.duplicates(kfp_runs.operator_runs_by_uid(ctx.stack.kfp_url), uids),
        kubernetes_events=_events_by_reason(ctx, namespace),
        events_dropped=delta.by_label("controller_events_dropped_total", "reason"),
        cpu_ms_per_run_by_thread=largest_first(
            per_run(_milliseconds(delta.by_label("controller_thread_cpu_seconds_total", "thread")), n)
        ),
        effective_operator_config=config,
        profile=summarise(collapsed, ctx.options.profile_rate) if collapsed is not None else None,
        profile_file=str(collapsed) if collapsed is not None else None,
    )
    return result, operator, watcher


def _events_by_reason(ctx: Context, namespace: str) -> dict[str, int]:
    """The Kubernetes Events the operator recorded in the namespace, by reason (from the API server)."""
    reasons: Counter[str] = Counter()
    token = ""
    while True:
        query = "?limit=500" + (f"&continue={token}" if token else "")
        page = ctx.kube.get_json(f"/api/v1/namespaces/{namespace}/events{query}")
        reasons.update(event.get("reason", "") for event in page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return dict(sorted(reasons.items()))


def _mean_ms(delta: Samples, histogram: str, label: str) -> dict[str, float]:
    """Mean of a histogram over the burst (its ``_sum`` over its ``_count``), in milliseconds."""
    sums = delta.by_label(f"{histogram}_sum", label)
    counts = delta.by_label(f"{histogram}_count", label)
    return {key: round(sums[key] * 1000 / counts[key], 1) for key in sums if counts.get(key)}


def _milliseconds(seconds: dict[str, float]) -> dict[str, float]:
    return {key: value * 1000 for key, value in seconds.items()}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in values.items()}
