"""KFP's capacity: how fast the KFP endpoint itself accepts creates, with no Kubernetes at all.

A direct client (one connection pool, as many threads as the concurrency) sends the operator's
own create requests (``reconcilers.run.submit.create_run_request``, ids given, no lookups) to
the emulator. A short sweep finds the concurrency at which it accepts creates fastest; then N
creates at that concurrency are timed. That time is what no controller can beat on this machine:
the operator's burst submission time is reported against it.

The runs created here carry a marker of their own (never the operator's), and the scenario
waits until the emulator has finished them, so that they do not load later scenarios.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import urllib3

from bench.runs import run_body, run_spec
from bench.scenarios.common import Context
from kfp_devstack.examples import PENGUIN_EXPERIMENT, PENGUIN_VERSION
from kfp_devstack.waiting import wait_until
from reconcilers.api.run import RunView
from reconcilers.run.resolve import PipelineVersion, Resolved
from reconcilers.run.submit import create_run_request

CAPACITY_MARKER = "bench-capacity/run="
CONCURRENCIES = (1, 2, 4, 8, 16, 32)


@dataclass
class CapacityResult:
    runs: int
    sweep_runs_per_level: int
    creates_per_second_by_concurrency: dict[str, float]  # the sweep
    best_concurrency: int
    create_seconds: float  # N creates at the best concurrency
    creates_per_second: float
    mean_create_ms: float  # the mean latency of one create at the best concurrency


def measure_capacity(ctx: Context) -> CapacityResult:
    n = ctx.options.runs
    creator = _Creator(ctx)
    per_level = max(10, min(100, n // 10))
    sweep: dict[str, float] = {}
    for concurrency in CONCURRENCIES:
        seconds, _ = creator.create(per_level, concurrency)
        sweep[str(concurrency)] = round(per_level / seconds, 1)
    best = int(max(sweep, key=lambda level: sweep[level]))
    seconds, latencies = creator.create(n, best)
    creator.wait_finished(ctx.timeout(n))
    return CapacityResult(
        runs=n,
        sweep_runs_per_level=per_level,
        creates_per_second_by_concurrency=sweep,
        best_concurrency=best,
        create_seconds=round(seconds, 3),
        creates_per_second=round(n / seconds, 1),
        mean_create_ms=round(sum(latencies) * 1000 / len(latencies), 1),
    )


class _Creator:
    def __init__(self, ctx: Context) -> None:
        stack = ctx.stack
        assert stack.penguin is not None
        self._url = stack.kfp_url.rstrip("/") + "/apis/v2beta1/runs"
        self._pool = urllib3.PoolManager(maxsize=max(CONCURRENCIES), retries=False)
        self._resolved = Resolved(
            pipeline_id=stack.penguin.pipeline_id,
            version=PipelineVersion(stack.penguin.pipeline_id, stack.penguin.version_id, PENGUIN_VERSION),
            experiment_id=stack.experiment_id,
            experiment_name=PENGUIN_EXPERIMENT,
            parameters={"TRAINING_RUNS": 100, "EXAMPLES": "gs://bench/penguin/examples"},
            dependencies={},
        )
        self._created = 0

    def create(self, count: int, concurrency: int) -> tuple[float, list[float]]:
        """Seconds for ``count`` creates at ``concurrency``, and each create's latency."""
        bodies = [self._body() for _ in range(count)]

        def send(body: bytes) -> float:
            started = time.monotonic()
            response = self._pool.request(
                "POST", self._url, body=body, headers={"Content-Type": "application/json"}
            )
            if response.status != 200:
                raise RuntimeError(f"KFP create: HTTP {response.status}: {response.data[:300]!r}")
            return time.monotonic() - started

        t0 = time.monotonic()
        with ThreadPoolExecutor(concurrency, thread_name_prefix="capacity") as pool:
            latencies = list(pool.map(send, bodies))
        self._created += count
        return time.monotonic() - t0, latencies

    def wait_finished(self, timeout: float) -> None:
        """Waits until the emulator has finished every run created here."""
        query = json.dumps(
            {
                "predicates": [
                    {"key": "description", "operation": "IS_SUBSTRING", "string_value": CAPACITY_MARKER},
                    {"key": "state", "operation": "EQUALS", "string_value": "SUCCEEDED"},
                ]
            }
        )

        def finished() -> bool:
            response = self._pool.request("GET", self._url, fields={"filter": query, "page_size": "1"})
            return int(json.loads(response.data).get("total_size") or 0) >= self._created

        wait_until(finished, timeout=timeout, interval=1.0, message="the capacity runs to finish in KFP")

    def _body(self) -> bytes:
        name = f"capacity-{uuid.uuid4().hex[:10]}"
        obj: dict[str, Any] = run_body(name, run_spec())
        obj["metadata"].update(namespace="bench-capacity", uid=str(uuid.uuid4()))
        request = create_run_request(RunView(obj), self._resolved)
        request["description"] = f"Created by the bench's capacity probe. {CAPACITY_MARKER}{name}"
        return json.dumps(request).encode()
