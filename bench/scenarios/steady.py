"""Steady state: the converged operator with N completed and N running Runs, over a fixed window.

After the burst, N more Runs are created whose KFP runs stay RUNNING (their
pipeline's Trainer task is held by the emulator). Once all are submitted and the
operator is quiet, nothing changes for a fixed window: whatever the operator does
then is its cost of standing still. The window is an observation period, not a
synchronisation: it only measures.

The bulk poll lists again the runs that finished within its look-back (five
minutes) before the previous poll, so the window opens only once the burst's
runs have left the look-back; the KFP calls per poll while they are still in it
are reported separately, as the settling figure.

Sources: the operator's ``rest_client_requests_total`` (by method), the API
server's own ``apiserver_request_total`` (writes by resource, which separates the
Lease renewals, the operator's and the API server's own heartbeat, from writes to
Runs and Events; nothing but the operator writes Runs or Events during the window),
the emulator's call counters, and ``/proc`` for CPU time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.operator import OperatorProcess
from bench.promtext import Samples
from bench.runs import create_runs, names, run_spec
from bench.scenarios.common import (
    Context,
    reads_and_writes,
    requests_by_method,
    wait_for_runs,
    wait_quiet,
    writes_by_resource,
)
from bench.stack import HELD_PIPELINE, HELD_VERSION
from bench.watcher import RunWatcher
from reconcilers.run.tracking import DEFAULT_LOOKBACK

BULK_POLL_ROUTE = "GET /apis/v2beta1/runs"


@dataclass
class SteadyResult:
    completed_runs: int
    running_runs: int
    window_seconds: float
    poll_interval_seconds: float
    poll_cycles: float  # window / pollInterval: the bulk polls the window holds
    seconds_since_last_completion: float  # at the window's start (the poll's look-back is 5 minutes)
    # KFP calls per poll from quiet until the window opens, while the burst's runs are in the
    # look-back; None when the bench does not wait for it (--quick).
    kfp_calls_per_poll_cycle_settling: float | None  # the bulk poll's list calls only
    kfp_calls_per_poll_cycle_settling_all_routes: float | None  # any KFP call, lookups included
    settling_seconds: float  # how long the settling figures were observed (0 when not waited)
    api_writes_per_minute: float  # the operator's non-GET requests, Lease renewals included
    api_reads_per_minute: float
    api_writes_per_minute_by_resource: dict[str, float]  # from the API server's own metrics
    api_writes_per_minute_excluding_leases: float
    kfp_calls_per_poll_cycle: float
    kfp_calls_per_poll_cycle_by_route: dict[str, float]
    mlmd_calls: int
    operator_cpu_seconds_per_minute: float


def prepare_steady(ctx: Context, watcher: RunWatcher, namespace: str) -> None:
    """Adds N Runs whose KFP runs stay RUNNING and waits until the operator submitted them all."""
    n = ctx.options.runs
    held = names("held", n)
    create_runs(
        ctx.kube, namespace, held, run_spec(HELD_PIPELINE, HELD_VERSION), threads=ctx.options.create_threads
    )
    wait_for_runs(watcher, held, "submitted", timeout=ctx.timeout(n))


def measure_steady(ctx: Context, operator: OperatorProcess, *, last_completion: float) -> SteadyResult:
    """The window itself, once the operator is quiet."""
    n = ctx.options.runs
    wait_quiet(operator, timeout=ctx.timeout(n), interval=ctx.options.quiet_seconds)
    window = ctx.options.steady_window_seconds
    poll_interval = float(ctx.effective_operator_config(operator)["poll_interval"])
    settle_started = time.monotonic()
    settling, settling_all = (
        _settle(ctx, last_completion, poll_interval) if ctx.options.settle_look_back else (None, None)
    )
    kfp_before, mlmd_before = ctx.emulator.calls(), ctx.emulator.mlmd_calls()
    apiserver_before = Samples.parse(ctx.stack.apiserver_metrics())
    metrics_before, cpu_before = operator.metrics(), operator.sample().cpu_seconds
    started = time.monotonic()
    time.sleep(window)  # the observation window: it measures, it does not synchronise
    elapsed = time.monotonic() - started
    metrics_after, cpu_after = operator.metrics(), operator.sample().cpu_seconds
    apiserver_after = Samples.parse(ctx.stack.apiserver_metrics())
    kfp_after, mlmd_after = ctx.emulator.calls(), ctx.emulator.mlmd_calls()

    minutes = elapsed / 60
    cycles = elapsed / poll_interval
    reads, writes = reads_and_writes(requests_by_method(metrics_after.minus(metrics_before)))
    by_resource = writes_by_resource(apiserver_after.minus(apiserver_before))
    kfp = {route: kfp_after.get(route, 0) - kfp_before.get(route, 0) for route in kfp_after}
    kfp = {route: count for route, count in kfp.items() if count}
    return SteadyResult(
        completed_runs=n,
        running_runs=n,
        window_seconds=round(elapsed, 2),
        poll_interval_seconds=poll_interval,
        poll_cycles=round(cycles, 2),
        seconds_since_last_completion=round(started - last_completion, 1),
        kfp_calls_per_poll_cycle_settling=settling,
        kfp_calls_per_poll_cycle_settling_all_routes=settling_all,
        settling_seconds=round(started - settle_started, 1) if ctx.options.settle_look_back else 0.0,
        api_writes_per_minute=round(writes / minutes, 2),
        api_reads_per_minute=round(reads / minutes, 2),
        api_writes_per_minute_by_resource={
            key: round(value / minutes, 2) for key, value in by_resource.items()
        },
        api_writes_per_minute_excluding_leases=round(
            sum(value for key, value in by_resource.items() if not key.startswith("leases")) / minutes, 2
        ),
        kfp_calls_per_poll_cycle=round(sum(kfp.values()) / cycles, 2),
        kfp_calls_per_poll_cycle_by_route={route: round(count / cycles, 2) for route, count in kfp.items()},
        mlmd_calls=sum(mlmd_after.values()) - sum(mlmd_before.values()),
        operator_cpu_seconds_per_minute=round((cpu_after - cpu_before) / minutes, 3),
    )


def _settle(ctx: Context, last_completion: float, poll_interval: float) -> tuple[float | None, float | None]:
    """Waits until the last completion is out of the poll's look-back; the bulk poll's KFP calls
    per poll meanwhile, and every KFP call per poll (lookups of Runs submitted just before)."""
    # The previous poll must have started a look-back after the last finish: two intervals of margin.
    opens = last_completion + DEFAULT_LOOKBACK.total_seconds() + 2 * poll_interval
    started, calls_before = time.monotonic(), ctx.emulator.calls()
    time.sleep(max(0.0, opens - started))  # waits for the clock itself: the look-back is a time
    elapsed = time.monotonic() - started
    calls_after = ctx.emulator.calls()
    if elapsed < poll_interval:
        return None, None
    cycles = elapsed / poll_interval
    polls = calls_after.get(BULK_POLL_ROUTE, 0) - calls_before.get(BULK_POLL_ROUTE, 0)
    every = sum(calls_after.values()) - sum(calls_before.values())
    return round(polls / cycles, 2), round(every / cycles, 2)
