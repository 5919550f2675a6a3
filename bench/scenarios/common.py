"""What every scenario needs: the stack, fresh namespaces, operators, and waiting on Runs."""

from __future__ import annotations

import dataclasses
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import BenchOptions, operator_config
from bench.kubehttp import KubeHttp
from bench.operator import OperatorProcess
from bench.promtext import Samples
from bench.stack import BenchStack
from bench.watcher import RunTimes, RunWatcher
from kfp_devstack.emulator import EmulatorControl
from kfp_devstack.waiting import wait_until
from kfp_operator import settings as operator_configuration

log = logging.getLogger(__name__)

READY_TIMEOUT = 180.0
# Generous deadlines per Run for waits that scale with N (the machine is shared by everything).
SECONDS_PER_RUN = 0.6
MIN_TIMEOUT = 90.0
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Context:
    stack: BenchStack
    options: BenchOptions
    work_dir: Path
    kube: KubeHttp = field(init=False)
    emulator: EmulatorControl = field(init=False)
    operators: list[OperatorProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kube = self.stack.kube()
        self.emulator = self.stack.emulator()

    def namespace(self, purpose: str) -> str:
        name = f"bench-{purpose}-{uuid.uuid4().hex[:6]}"
        self.kube.create_namespace(name)
        return name

    def operator(self, name: str, namespace: str) -> OperatorProcess:
        identity = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        config = operator_config(self.stack, namespace, self.options, identity=identity)
        operator = OperatorProcess(name, config, self.stack.kubeconfig, self.work_dir / "operators")
        self.operators.append(operator)
        return operator

    def effective_operator_config(self, operator: OperatorProcess) -> dict[str, Any]:
        """Every configuration key as the operator sees it (defaults included), for the record."""
        loaded = operator_configuration.load(operator_configuration.read_file(operator.config_file), {})
        return dataclasses.asdict(loaded)

    def planned_operator_config(self) -> dict[str, Any]:
        """The effective configuration the bench's operators will have (written, never started)."""
        return self.effective_operator_config(self.operator("planned", "planned"))

    def process_ids(self, **extra: int) -> dict[str, int]:
        """The stack's processes, this bench process, and ``extra`` ones, by name."""
        return {**self.stack.process_ids(), "bench": os.getpid(), **extra}

    def timeout(self, runs: int) -> float:
        return max(MIN_TIMEOUT, runs * SECONDS_PER_RUN)

    def stop_operators(self) -> None:
        for operator in self.operators:
            operator.kill()


def stop_operator(operator: OperatorProcess) -> None:
    """Stops the operator as Kubernetes would (SIGTERM); an unclean exit is an operator problem."""
    started = time.monotonic()
    code = operator.stop()
    log.info("operator %s stopped in %.1f s", operator.name, time.monotonic() - started)
    if code != 0:
        raise RuntimeError(f"operator {operator.name} exited with {code}; log:\n{operator.tail()}")


def wait_for_runs(
    watcher: RunWatcher, names: Iterable[str], stage: str, *, timeout: float
) -> dict[str, RunTimes]:
    """Waits until every named Run reached ``stage`` (a :class:`RunTimes` field); returns them."""
    wanted = set(names)

    def test(times: RunTimes) -> bool:
        return getattr(times, stage) is not None

    def done() -> dict[str, RunTimes] | None:
        snapshot = watcher.snapshot()
        pending = [name for name in wanted if name not in snapshot or not test(snapshot[name])]
        return {name: snapshot[name] for name in wanted} if not pending else None

    def describe() -> str:
        snapshot = watcher.snapshot()
        missing = sum(1 for name in wanted if name not in snapshot or not test(snapshot[name]))
        return f"{missing} of {len(wanted)} Runs to be {stage}"

    return wait_until(done, timeout=timeout, interval=0.1, message=describe)


def wait_quiet(operator: OperatorProcess, *, timeout: float, interval: float) -> Samples:
    """Waits until the operator's work queues are empty and it made no Run or Event write
    (``POST``/``PATCH``) between two scrapes ``interval`` apart. Lease renewals (``PUT``)
    go on forever and are not counted. Returns the last scrape."""
    previous: list[tuple[float, float] | None] = [None]

    def quiet() -> Samples | None:
        samples = operator.metrics()
        writes = (
            samples.total("rest_client_requests_total", lambda labels: labels["method"] == "POST"),
            samples.total("rest_client_requests_total", lambda labels: labels["method"] == "PATCH"),
        )
        idle = (
            samples.total("workqueue_depth") == 0 and samples.total("controller_runtime_active_workers") == 0
        )
        settled = idle and previous[0] == writes
        previous[0] = writes
        return samples if settled else None

    return wait_until(quiet, timeout=timeout, interval=interval, message="the operator to go quiet")


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and p99 (linear interpolation between the closest ranks) and the maximum."""
    if len(values) < 2:
        only = values[0] if values else float("nan")
        return {"p50": only, "p95": only, "p99": only, "max": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


def requests_by_method(delta: Samples) -> dict[str, float]:
    """The operator's API server requests by HTTP method (``rest_client_requests_total``)."""
    return delta.by_label("rest_client_requests_total", "method")


def reads_and_writes(by_method: dict[str, float]) -> tuple[float, float]:
    """(reads, writes): ``GET`` (gets, lists and watches) and everything else."""
    reads = by_method.get("GET", 0.0)
    writes = sum(count for method, count in by_method.items() if method in WRITE_METHODS)
    return reads, writes


def non_2xx(delta: Samples, name: str, label: str = "code") -> dict[str, float]:
    """Requests of a counter whose status code is not a success, by code."""
    return {
        code: count
        for code, count in delta.by_label(name, label).items()
        if count and not (code.startswith("2") or code in ("OK",))
    }


def per_run(counts: dict[str, float], runs: int) -> dict[str, float]:
    return {key: round(value / runs, 3) for key, value in counts.items() if value}


def largest_first(values: dict[str, float]) -> dict[str, float]:
    """The same values, ordered from the largest down (as the report lists them)."""
    return dict(sorted(values.items(), key=lambda item: -item[1]))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


APISERVER_WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def writes_by_resource(delta: Samples) -> dict[str, float]:
    """API server write requests by ``resource[/subresource]``."""
    counts: dict[str, float] = {}
    for (name, labels), value in delta.values.items():
        if name != "apiserver_request_total" or not value:
            continue
        label = dict(labels)
        if label.get("verb") not in APISERVER_WRITE_VERBS:
            continue
        key = label.get("resource", "") + (f"/{label['subresource']}" if label.get("subresource") else "")
        counts[key] = counts.get(key, 0.0) + value
    return dict(sorted(counts.items()))
