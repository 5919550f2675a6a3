"""Memory and restart: the operator with M completed Runs in its cache.

1. An operator watching an empty namespace: its RSS once ready and quiet is the
   baseline (``VmRSS`` of ``/proc/PID/status``).
2. M Runs with a completed status are created directly through the API (a create and
   a status patch each; the operator is not running). Their status is a copy of one
   the operator wrote in the burst, with a KFP run id of its own, so the objects are
   the size real completed Runs are. Their JSON size is the sum of the response
   bodies of the status patches: each Run serialised as the API server returns it.
3. The restart floor (``bench.restart_floor``): a process that imports the operator's
   code and lists the M Runs once, the unavoidable part of any restart; and the API
   server alone: one unpaginated list of the M Runs, read but not decoded.
4. A fresh operator on that namespace: time from spawning it to ``/readyz`` 200 with
   the Lease held (the Runs not completed yet are cached: none here; the completed ones are
   listed behind the watch), then until every Run is cached and has reached the controllers
   that have something to decide about it (for a completed Run none, with the chart's default
   of no ``runCompletionTTL``: the ``run`` and ``run-ttl`` controllers' event filters leave it
   out) and all queues are empty; then one more poll
   interval of observation. KFP and MLMD calls (emulator counters, reset before the start),
   API requests (its ``rest_client_requests_total``) and its RSS at the end are the
   restart's cost.

Steps 3 and 4 are repeated ``--restart-rounds`` times, in turn, and the times and the RSS
reported are the medians of the rounds (each round's figures are kept too). The API server
serving the list is most of a restart's time, and it has minutes when it is busy with work of
its own (on one machine, 40 s in which it used one and a half cores while no client asked
anything): a restart measured once in such a minute said more about the API server than about
the operator. The counts (KFP calls, API writes, failed requests) are summed over the rounds.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.kubehttp import runs_path
from bench.operator import OperatorProcess
from bench.promtext import Samples
from bench.runs import completed_status_like, create_completed_runs, names, run_spec
from bench.scenarios.common import (
    READY_TIMEOUT,
    Context,
    largest_first,
    non_2xx,
    reads_and_writes,
    requests_by_method,
    stop_operator,
    wait_quiet,
    writes_by_resource,
)
from kfp_devstack.binaries import PROJECT_ROOT
from kfp_devstack.waiting import wait_until

log = logging.getLogger(__name__)

# The M Runs are the bench's own load, not a measurement: as many concurrent creates as help.
CREATE_THREADS = 32


@dataclass
class RestartRound:
    """One round of step 3 and 4: the floor, the API server alone, then the operator."""

    floor_seconds: float
    apiserver_list_seconds: float
    ready_seconds: float
    reconciled_seconds: float
    cpu_seconds: float
    rss_cached_bytes: int
    peak_rss_cached_bytes: int
    # The same CPU (start to quiet) by kind of thread (controller_thread_cpu_seconds_total),
    # largest first: what the start, the list into the cache and the controllers' first pass cost.
    cpu_seconds_by_thread: dict[str, float] = field(default_factory=dict)


@dataclass
class CacheResult:
    cached_runs: int
    json_bytes_per_run: float
    rss_empty_bytes: int  # operator with 0 Runs, ready and quiet
    rss_cached_bytes: int  # operator with M Runs, after reconciling all of them (median of the rounds)
    peak_rss_cached_bytes: int  # VmHWM of that operator (median of the rounds)
    rss_bytes_per_run: float  # (rss_cached - rss_empty) / M
    rss_to_json_ratio: float  # rss_bytes_per_run / json_bytes_per_run
    # The times below are medians of the rounds; each round's are in ``rounds``.
    restart_ready_seconds: float  # spawn -> /readyz 200 and Lease held
    restart_reconciled_seconds: float  # spawn -> every Run cached, queues empty, workers idle
    restart_floor_seconds: float  # spawn -> exit of a process importing the operator and listing M Runs
    apiserver_list_seconds: float  # one unpaginated list of the M Runs, read and not decoded
    # The counts below are summed over the rounds, requests per round (divided by the rounds).
    restart_kfp_calls: dict[str, int]
    restart_mlmd_calls: int
    restart_api_requests: dict[str, float]  # by method, per round
    restart_api_reads: float  # per round
    restart_api_writes: float  # per round
    # Writes the API server stored, Leases apart (its apiserver_request_total by resource)
    restart_api_writes_excluding_leases: float
    restart_api_writes_by_resource: dict[str, float]
    restart_api_failed_requests: dict[str, float]
    restart_cpu_seconds: float  # spawn -> end of observation (median of the rounds)
    rounds: list[RestartRound] = field(default_factory=list)


class CacheScenario:
    """The three steps, so that creating the M Runs (load generation, not measured) can overlap
    with the preparation of another scenario."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._m = ctx.options.cache_runs
        self.namespace = ctx.namespace("cache")
        self._rss_empty: int | None = None
        self._json_bytes: int | None = None

    def measure_empty(self) -> None:
        """Step 1: the operator's RSS with nothing in its cache."""
        ctx = self._ctx
        empty = ctx.operator("empty", self.namespace).start()
        empty.wait_ready(ctx.kube, timeout=READY_TIMEOUT)
        wait_quiet(empty, timeout=READY_TIMEOUT, interval=ctx.options.quiet_seconds)
        self._rss_empty = empty.sample().rss_bytes
        stop_operator(empty)

    def create_runs(self, template_namespace: str, template_run: str) -> None:
        """Step 2: M completed Runs, statuses copied from ``template_run``'s."""
        ctx = self._ctx
        status = ctx.kube.get_json(runs_path(template_namespace, template_run))["status"]
        self._json_bytes = create_completed_runs(
            ctx.kube,
            self.namespace,
            names("cached", self._m),
            run_spec(),
            completed_status_like(status, status["providerId"].rpartition(":")[2]),
            threads=CREATE_THREADS,
        )

    def measure_restart(self) -> CacheResult:
        """Steps 3 and 4, ``--restart-rounds`` times."""
        ctx, m = self._ctx, self._m
        assert self._rss_empty is not None and self._json_bytes is not None, "steps 1 and 2 first"
        rounds: list[RestartRound] = []
        costs = _Costs()
        for number in range(1, ctx.options.restart_rounds + 1):
            log.info("restart round %d of %d", number, ctx.options.restart_rounds)
            rounds.append(self._restart_round(costs))

        rss_cached = int(statistics.median(r.rss_cached_bytes for r in rounds))
        json_per_run = self._json_bytes / m
        rss_per_run = (rss_cached - self._rss_empty) / m
        by_method = {method: count / len(rounds) for method, count in costs.requests.items()}
        reads, writes = reads_and_writes(by_method)
        return CacheResult(
            cached_runs=m,
            json_bytes_per_run=round(json_per_run, 1),
            rss_empty_bytes=self._rss_empty,
            rss_cached_bytes=rss_cached,
            peak_rss_cached_bytes=int(statistics.median(r.peak_rss_cached_bytes for r in rounds)),
            rss_bytes_per_run=round(rss_per_run, 1),
            rss_to_json_ratio=round(rss_per_run / json_per_run, 2),
            restart_ready_seconds=_median(r.ready_seconds for r in rounds),
            restart_reconciled_seconds=_median(r.reconciled_seconds for r in rounds),
            restart_floor_seconds=_median(r.floor_seconds for r in rounds),
            apiserver_list_seconds=_median(r.apiserver_list_seconds for r in rounds),
            restart_kfp_calls=costs.kfp_calls,
            restart_mlmd_calls=costs.mlmd_calls,
            restart_api_requests=by_method,
            restart_api_reads=reads,
            restart_api_writes=writes,
            restart_api_writes_excluding_leases=sum(costs.stored_writes.values()),
            restart_api_writes_by_resource=costs.stored_writes,
            restart_api_failed_requests=costs.failed_requests,
            restart_cpu_seconds=round(statistics.median(r.cpu_seconds for r in rounds), 2),
            rounds=rounds,
        )

    def _restart_round(self, costs: _Costs) -> RestartRound:
        """The restart floor, the API server alone, then a fresh operator, one after the other
        (so that the three meet the API server in the same state); adds the operator's costs."""
        ctx, m = self._ctx, self._m
        timeout = ctx.timeout(m)
        floor_seconds = _restart_floor(ctx, self.namespace, m)
        apiserver_list_seconds = _apiserver_list_seconds(ctx, self.namespace)

        ctx.emulator.reset_calls()
        apiserver_before = Samples.parse(ctx.stack.apiserver_metrics())
        operator = ctx.operator("restart", self.namespace).start()
        ready_seconds = operator.wait_ready(ctx.kube, timeout=READY_TIMEOUT)
        assert operator.started_at is not None
        wait_until(
            lambda: _reconciled_all(operator, m),
            timeout=timeout,
            interval=0.5,
            message=f"the restarted operator to reconcile {m} Runs",
        )
        reconciled_seconds = time.monotonic() - operator.started_at
        poll_interval = float(ctx.effective_operator_config(operator)["poll_interval"])
        time.sleep(poll_interval + 1)  # observation: a bulk poll would have happened by now
        samples = wait_quiet(operator, timeout=timeout, interval=ctx.options.quiet_seconds)
        process = operator.sample()
        kfp_calls = ctx.emulator.calls()
        mlmd_calls = ctx.emulator.mlmd_calls()
        apiserver_after = Samples.parse(ctx.stack.apiserver_metrics())
        stop_operator(operator)

        _add(costs.kfp_calls, kfp_calls)
        costs.mlmd_calls += sum(mlmd_calls.values())
        _add(costs.requests, requests_by_method(samples))
        _add(costs.failed_requests, non_2xx(samples, "rest_client_requests_total"))
        # Writes by resource as the API server counts them (nothing else writes meanwhile). Access
        # reviews (the start's permission checks) are POSTs that store nothing.
        _add(
            costs.stored_writes,
            {
                resource: count
                for resource, count in writes_by_resource(apiserver_after.minus(apiserver_before)).items()
                if not resource.startswith(("leases", "selfsubjectaccessreviews"))
            },
        )
        return RestartRound(
            floor_seconds=round(floor_seconds, 3),
            apiserver_list_seconds=round(apiserver_list_seconds, 3),
            ready_seconds=round(ready_seconds, 3),
            reconciled_seconds=round(reconciled_seconds, 3),
            cpu_seconds=round(process.cpu_seconds, 2),
            rss_cached_bytes=process.rss_bytes,
            peak_rss_cached_bytes=process.hwm_bytes,
            cpu_seconds_by_thread=_by_thread(samples),
        )


@dataclass
class _Costs:
    """What the restarts of all rounds cost, added up."""

    kfp_calls: dict[str, int] = field(default_factory=dict)
    mlmd_calls: int = 0
    requests: dict[str, float] = field(default_factory=dict)
    failed_requests: dict[str, float] = field(default_factory=dict)
    stored_writes: dict[str, float] = field(default_factory=dict)


def _add(totals: dict[str, Any], counts: Mapping[str, Any]) -> None:
    for name, count in counts.items():
        totals[name] = totals.get(name, 0) + count


def _by_thread(samples: Samples) -> dict[str, float]:
    """The operator's CPU seconds so far by kind of thread, largest first, those above 5 ms."""
    seconds = samples.by_label("controller_thread_cpu_seconds_total", "thread")
    return largest_first({kind: round(value, 2) for kind, value in seconds.items() if value >= 0.005})


def _median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 3)


def _reconciled_all(operator: OperatorProcess, m: int) -> bool:
    """Every Run cached (the Run cache's gauges are reported from then on) and every controller
    done with what that gave it: each queue empty, no worker busy."""
    samples = operator.metrics()
    return (
        samples.total("kfp_operator_runs") >= m
        and samples.total("workqueue_depth") == 0
        and samples.total("controller_runtime_active_workers") == 0
    )


def _restart_floor(ctx: Context, namespace: str, m: int) -> float:
    """Seconds from spawning the restart floor to its report of having listed every Run
    (its interpreter's teardown after that is not part of a restart)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.restart_floor", f"--kubeconfig={ctx.stack.kubeconfig}", namespace],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.monotonic() - started
    if process.wait(timeout=300) != 0 or not line.startswith("listed "):
        raise RuntimeError(f"the restart floor failed ({process.returncode}): {line!r}")
    listed = int(line.split()[1])
    if listed != m:
        raise RuntimeError(f"the restart floor listed {listed} Runs, expected {m}")
    return elapsed


def _apiserver_list_seconds(ctx: Context, namespace: str) -> float:
    """What serving the M Runs costs the API server alone: the restart floor's
    ``--bytes-only`` list, timed by that process around the request."""
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.restart_floor",
            "--bytes-only",
            f"--kubeconfig={ctx.stack.kubeconfig}",
            namespace,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    # "served <bytes> bytes in <seconds> s"
    return float(output.split()[4])
