"""Idle RunConfigurations: what R RunConfigurations on schedules cost while none is due.

R RunConfigurations (R = N) each run the penguin pipeline's pinned version on a schedule that
is not due for months (``0 0 1 1 *`` or ``0 0 29 2 *``). A fresh operator synchronises them (each
resolves its run and writes its status once); once it is quiet, a window of the steady state's
length is observed: the operator's API server requests (Lease renewals apart), its KFP calls
(the emulator's counters) and its CPU, per minute. Nothing is due, so whatever it does is the
cost of the schedules standing still.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.runs import names, run_spec
from bench.scenarios.common import (
    READY_TIMEOUT,
    Context,
    requests_by_method,
    stop_operator,
    wait_quiet,
)
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP, VERSION

SCHEDULES = ("0 0 1 1 *", "0 0 29 2 *")  # New Year's Day; the next 29 February


@dataclass
class IdleRunConfigurationsResult:
    run_configurations: int
    synchronized_seconds: float  # operator ready -> every RunConfiguration Synchronized, quiet
    window_seconds: float
    api_requests_per_minute: dict[str, float]  # by method, Lease renewals (PUT) apart
    api_requests_per_minute_excluding_leases: float
    kfp_calls_per_minute: float
    kfp_calls_by_route: dict[str, int]
    operator_cpu_seconds_per_minute: float
    runs_created: int


def measure_idle_run_configurations(ctx: Context) -> IdleRunConfigurationsResult:
    r = ctx.options.runs
    namespace = ctx.namespace("idle-rc")
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/runconfigurations"

    def create(index_name: tuple[int, str]) -> None:
        index, name = index_name
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RunConfiguration",
            "metadata": {"name": name},
            "spec": {"run": run_spec(), "triggers": {"schedules": [SCHEDULES[index % len(SCHEDULES)]]}},
        }
        ctx.kube.request("POST", path, body)

    with ThreadPoolExecutor(ctx.options.create_threads, thread_name_prefix="create-rc") as pool:
        list(pool.map(create, enumerate(names("rc", r))))

    operator = ctx.operator("idle-rc", namespace).start()
    operator.wait_ready(ctx.kube, timeout=READY_TIMEOUT)
    ready = time.monotonic()
    wait_until(
        lambda: _synchronized(ctx, path) >= r,
        timeout=ctx.timeout(r),
        interval=0.5,
        message=f"{r} RunConfigurations to be Synchronized",
    )
    before = wait_quiet(operator, timeout=ctx.timeout(r), interval=ctx.options.quiet_seconds)
    synchronized = time.monotonic() - ready
    ctx.emulator.reset_calls()
    cpu_before = operator.sample().cpu_seconds
    started = time.monotonic()
    time.sleep(ctx.options.steady_window_seconds)  # the observation window itself
    after = operator.metrics()
    window = time.monotonic() - started
    cpu = operator.sample().cpu_seconds - cpu_before
    kfp_calls = ctx.emulator.calls()
    runs = ctx.kube.get_json(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/runs")
    stop_operator(operator)

    per_minute = 60.0 / window
    by_method = requests_by_method(after.minus(before))
    without_leases = {m: round(c * per_minute, 2) for m, c in by_method.items() if m != "PUT" and c}
    return IdleRunConfigurationsResult(
        run_configurations=r,
        synchronized_seconds=round(synchronized, 3),
        window_seconds=round(window, 1),
        api_requests_per_minute=without_leases,
        api_requests_per_minute_excluding_leases=round(sum(without_leases.values()), 2),
        kfp_calls_per_minute=round(sum(kfp_calls.values()) * per_minute, 2),
        kfp_calls_by_route=kfp_calls,
        operator_cpu_seconds_per_minute=round(cpu * per_minute, 3),
        runs_created=len(runs.get("items") or []),
    )


def _synchronized(ctx: Context, path: str) -> int:
    count, token = 0, ""
    while True:
        page = ctx.kube.get_json(f"{path}?limit=500" + (f"&continue={token}" if token else ""))
        for item in page.get("items") or []:
            conditions = (item.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Synchronized" and c.get("status") == "True" for c in conditions):
                count += 1
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return count
