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

import logging
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench import machine
from bench.config import RESULTS_DIR, BenchOptions
from bench.report import BenchResult, compute_ratios, find_problems
from bench.scenarios.burst import run_burst
from bench.scenarios.cache import CacheScenario
from bench.scenarios.common import READY_TIMEOUT, Context, stop_operator
from bench.scenarios.floor import run_floor
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

        log.info("floor: %d Runs without the operator", options.runs)
        floor = run_floor(ctx, ctx.planned_operator_config())

        log.info("burst: %d Runs", options.runs)
        burst, operator, watcher = run_burst(ctx)
        stop_operator(operator)
        last_completion = max(t.completed or 0.0 for t in watcher.snapshot().values())

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

        log.info("memory and restart: %d completed Runs", options.cache_runs)
        cache = cache_scenario.measure_restart()
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
    )
    result.ratios = compute_ratios(result)
    result.problems = find_problems(result)
    return result


def default_json_path(result: BenchResult) -> Path:
    stamp = result.started_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    return RESULTS_DIR / f"{stamp}.json"
