"""Runs every scenario in order on one local stack and assembles the result.

Order matters for fairness. The floor runs first: each scenario leaves N finished
runs behind in the emulator, which makes its later list calls a little slower, so
the baseline gets the emulator at its fastest and the ratios err against the
operator. The steady state, whose KFP runs stay RUNNING (and keep the emulator's
run engine busier), comes after the bursts; the M completed Runs of the memory and
restart scenarios are created while the steady state is being prepared (nothing is
measured then), and the restart is measured last, alone.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench import machine
from bench.config import RESULTS_DIR, BenchOptions
from bench.profile import summary_text
from bench.report import BenchResult, compute_ratios, find_problems
from bench.scenarios.burst import run_burst
from bench.scenarios.cache import CacheScenario
from bench.scenarios.capacity import measure_capacity
from bench.scenarios.common import READY_TIMEOUT, Context, stop_operator
from bench.scenarios.floor import run_floor
from bench.scenarios.idle_rc import measure_idle_run_configurations
from bench.scenarios.peer import measure_peer_memory, run_peer_burst
from bench.scenarios.steady import measure_steady, prepare_steady
from bench.stack import BenchStack

log = logging.getLogger("bench")


def run(options: BenchOptions) -> BenchResult:
    started_at = datetime.now(UTC)
    started = time.monotonic()
    work_dir = options.work_dir or Path(tempfile.mkdtemp(prefix="kfp-bench-"))
    log.info("work directory %s (logs of every process are kept there)", work_dir)
    stack = BenchStack(work_dir, options.timings)
    ctx: Context | None = None
    try:
        log.info("starting the stack: control plane, KFP emulator with MLMD, NATS")
        stack.start()
        ctx = Context(stack, options, work_dir)

        capacity = None
        if options.capacity:
            log.info("KFP capacity: %d creates straight to KFP", options.runs)
            capacity = measure_capacity(ctx)

        planned = ctx.planned_operator_config()
        log.info("floor: %d Runs without the operator", options.runs)
        floor = run_floor(ctx, planned)

        log.info("burst: %d Runs", options.runs)
        burst, operator, watcher = run_burst(ctx)
        stop_operator(operator)
        last_completion = max(t.completed or 0.0 for t in watcher.snapshot().values())

        peer_burst = None
        if options.kopf:
            log.info("kopf peer: %d Runs", options.runs)
            peer_burst = run_peer_burst(ctx, planned)

        log.info("memory: the operator with 0 Runs")
        cache_scenario = CacheScenario(ctx)
        cache_scenario.measure_empty()

        log.info("steady state: %d completed and %d running Runs", options.runs, options.runs)
        operator = ctx.operator("steady", burst.namespace).start()
        operator.wait_ready(ctx.kube, timeout=READY_TIMEOUT)
        with ThreadPoolExecutor(1, thread_name_prefix="cache-runs") as background:
            # The M completed Runs for the memory and restart scenarios are created meanwhile, in a
            # namespace this operator does not watch; nothing is measured until both are done.
            creating = background.submit(cache_scenario.create_runs, burst.namespace, "burst-00000")
            prepare_steady(ctx, watcher, burst.namespace)
            creating.result(timeout=ctx.timeout(options.cache_runs))
        steady = measure_steady(ctx, operator, last_completion=last_completion)
        stop_operator(operator)
        watcher.stop()

        idle_rc = None
        if options.idle_run_configurations:
            log.info("idle RunConfigurations: %d on schedules not due", options.runs)
            idle_rc = measure_idle_run_configurations(ctx)

        log.info("memory and restart: %d completed Runs", options.cache_runs)
        cache = cache_scenario.measure_restart()

        peer_memory = None
        if options.kopf:
            # After the operator's restart: kopf annotates every Run it has never seen.
            log.info("kopf peer: memory with 0 and %d Runs", options.cache_runs)
            peer_memory = measure_peer_memory(ctx, planned, cache_scenario.namespace)
    finally:
        if ctx is not None:
            ctx.stop_operators()
        stack.stop()
    if options.work_dir is None:
        # After a successful run the emulator's databases (about 150 MB at the default scale) are
        # of no further use; the logs stay.
        shutil.rmtree(work_dir / "kfp", ignore_errors=True)

    result = BenchResult(
        started_at=started_at.isoformat(timespec="seconds"),
        duration_seconds=round(time.monotonic() - started, 1),
        machine=machine.describe(),
        configuration={
            "options": options.to_json(),
            "emulator": {
                "pendingSeconds": options.timings.pending_seconds,
                "taskSeconds": options.timings.task_seconds,
                "pipeline": "penguin-pipeline (3 tasks: Trainer, Evaluator, Pusher)",
            },
            "operatorConfig": burst.effective_operator_config,
            "workDir": str(work_dir),
        },
        burst=burst,
        floor=floor,
        steady=steady,
        cache=cache,
        capacity=capacity,
        idle_run_configurations=idle_rc,
        kopf_burst=peer_burst,
        kopf_memory=peer_memory,
    )
    result.ratios = compute_ratios(result)
    result.problems = find_problems(result)
    return result


def default_json_path(result: BenchResult) -> Path:
    stamp = result.started_at.replace(":", "").replace("-", "").replace("+00:00", "Z").replace("+0000", "Z")
    return RESULTS_DIR / f"{stamp}.json"


def keep_profile(result: BenchResult, json_path: Path) -> Path | None:
    """Keeps the burst's profile next to the JSON: the collapsed stacks, compressed
    (``<name>.burst-profile.collapsed.gz``), and their summary (``<name>.burst-profile.txt``)."""
    source = result.burst.profile_file
    if not source or not Path(source).exists():
        return None
    target = json_path.with_suffix(".burst-profile.collapsed.gz")
    target.parent.mkdir(parents=True, exist_ok=True)
    with Path(source).open("rb") as collapsed, gzip.open(target, "wb") as compressed:
        shutil.copyfileobj(collapsed, compressed)
    result.burst.profile_file = target.name
    if result.burst.profile is not None:
        rate = result.burst.profile["rate_hz"]
        heading = (
            f"py-spy record --nonblocking --gil --rate {rate} --format raw, over the burst of "
            f"{result.burst.runs} Runs ({result.burst.profile['samples']} samples of the thread "
            "holding the GIL, i.e. of the operator's own CPU).\n"
            f"Collapsed stacks: {target.name} (flamegraph.pl, speedscope)."
        )
        json_path.with_suffix(".burst-profile.txt").write_text(summary_text(result.burst.profile, heading))
    return target
