"""The /metrics exposition matches controller-runtime's series (style guide section 2).

The expected tables below are the contract the standard dashboards rely on: names, types,
label sets and histogram bucket boundaries.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.clock import FakeClock
from controller.informer import Informer
from controller.keys import ObjectKey
from controller.metrics import LabelledChildren, Metrics, MetricsServer
from controller.reconcile import Result
from controller.resource import CONFIGMAPS
from controller.runner import Controller

RECONCILE_BUCKETS = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
]  # fmt: skip
WORKQUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000]

# name -> (type, label names, buckets)
EXPECTED: dict[str, tuple[str, set[str], list[float] | None]] = {
    "controller_runtime_reconcile_total": ("counter", {"controller", "result"}, None),
    "controller_runtime_reconcile_errors_total": ("counter", {"controller"}, None),
    "controller_runtime_terminal_reconcile_errors_total": ("counter", {"controller"}, None),
    "controller_runtime_reconcile_panics_total": ("counter", {"controller"}, None),
    "controller_runtime_reconcile_timeouts_total": ("counter", {"controller"}, None),
    "controller_runtime_reconcile_time_seconds": ("histogram", {"controller"}, RECONCILE_BUCKETS),
    "controller_runtime_max_concurrent_reconciles": ("gauge", {"controller"}, None),
    "controller_runtime_active_workers": ("gauge", {"controller"}, None),
    "workqueue_depth": ("gauge", {"name", "controller", "priority"}, None),
    "workqueue_adds_total": ("counter", {"name", "controller"}, None),
    "workqueue_queue_duration_seconds": ("histogram", {"name", "controller"}, WORKQUEUE_BUCKETS),
    "workqueue_work_duration_seconds": ("histogram", {"name", "controller"}, WORKQUEUE_BUCKETS),
    "workqueue_unfinished_work_seconds": ("gauge", {"name", "controller"}, None),
    "workqueue_longest_running_processor_seconds": ("gauge", {"name", "controller"}, None),
    "workqueue_retries_total": ("counter", {"name", "controller"}, None),
    "rest_client_requests_total": ("counter", {"code", "method", "host"}, None),
    "leader_election_master_status": ("gauge", {"name"}, None),
    "controller_events_dropped_total": ("counter", {"reason"}, None),
}


class Done:
    def reconcile(self, key: ObjectKey) -> Result:
        return Result()


def populated_metrics() -> Metrics:
    """Metrics after one controller reconciled once, one request and one election."""
    metrics = Metrics()
    clock = FakeClock()
    informer = Informer(CONFIGMAPS, lambda ns: None, clock=clock)  # type: ignore[arg-type,return-value]
    controller = Controller(
        "sample", Done(), primary=informer, metrics=metrics, clock=clock, start_queue_thread=False
    )
    controller.queue.add(ObjectKey("ns", "a"))
    controller.process_next_work_item()
    metrics.rest_client_requests.labels("200", "GET", "127.0.0.1:6443").inc()
    metrics.leader_election_master_status.labels("kfp-operator-leader").set(1)
    return metrics


def families(text: str) -> dict[str, tuple[str, list]]:
    """sample-name-keyed view: metric name as exported -> (type, samples)."""
    out: dict[str, tuple[str, list]] = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        out[name] = (family.type, family.samples)
    return out


def test_exposition_matches_controller_runtime() -> None:
    exported = families(generate_latest(populated_metrics().registry).decode())
    for name, (kind, labels, buckets) in EXPECTED.items():
        assert name in exported, f"{name} is missing"
        exported_kind, samples = exported[name]
        assert exported_kind == kind, name
        assert samples, f"{name} has no series"
        for sample in samples:
            assert set(sample.labels) - {"le"} == labels, f"{name}: labels {sorted(sample.labels)}"
        if buckets is not None:
            les = sorted({float(s.labels["le"]) for s in samples if s.name.endswith("_bucket")})
            assert les[-1] == float("inf")
            assert les[:-1] == pytest.approx(sorted(buckets), rel=1e-12), f"{name}: buckets"


def test_workqueue_buckets_are_bit_identical_to_go() -> None:
    # Go's ExponentialBuckets multiplies repeatedly; its exposition shows e.g. 9.999999999999999e-06.
    text = generate_latest(populated_metrics().registry).decode()
    assert (
        'workqueue_queue_duration_seconds_bucket{controller="sample",le="9.999999999999999e-06",name="sample"}'
        in text
    )


def test_no_created_series_and_process_metrics_present() -> None:
    text = generate_latest(populated_metrics().registry).decode()
    assert "_created" not in text
    names = families(text)
    assert "process_cpu_seconds_total" in names
    assert "process_resident_memory_bytes" in names


def test_per_controller_series_are_pre_initialised() -> None:
    metrics = Metrics(process_collector=False)
    metrics.init_controller("idle", 3)
    r = metrics.registry
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            r.get_sample_value("controller_runtime_reconcile_total", {"controller": "idle", "result": result})
            == 0
        )
    for name in ("errors", "terminal_reconcile_errors", "reconcile_panics", "reconcile_timeouts"):
        full = f"controller_runtime_{'reconcile_' if name == 'errors' else ''}{name}_total"
        assert r.get_sample_value(full, {"controller": "idle"}) == 0, full
    assert r.get_sample_value("controller_runtime_max_concurrent_reconciles", {"controller": "idle"}) == 3
    assert r.get_sample_value("controller_runtime_active_workers", {"controller": "idle"}) == 0


def test_unfinished_work_is_current_at_every_scrape() -> None:
    metrics = Metrics(process_collector=False)
    clock = FakeClock()
    informer = Informer(CONFIGMAPS, lambda ns: None, clock=clock)  # type: ignore[arg-type,return-value]
    controller = Controller(
        "slow", Done(), primary=informer, metrics=metrics, clock=clock, start_queue_thread=False
    )
    controller.queue.add(ObjectKey("ns", "a"))
    controller.queue.get()
    clock.step(7.0)
    labels = {"name": "slow", "controller": "slow"}
    assert metrics.registry.get_sample_value("workqueue_unfinished_work_seconds", labels) == pytest.approx(
        7.0
    )
    assert metrics.registry.get_sample_value("workqueue_longest_running_processor_seconds", labels) == 7.0


def test_reconcilers_can_register_their_own_metrics() -> None:
    from prometheus_client import Counter

    metrics = Metrics(process_collector=False)
    Counter("kfp_operator_run_submissions_total", "Runs submitted", registry=metrics.registry).inc()
    text = generate_latest(metrics.registry).decode()
    assert "kfp_operator_run_submissions_total 1.0" in text
    assert "kfp_operator_run_submissions_created" not in text


def test_promtool_check_metrics_reports_nothing(promtool: Path) -> None:
    metrics = populated_metrics()
    server = MetricsServer("127.0.0.1:0", metrics.registry)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.stop()
    assert "controller_runtime_reconcile_total" in text
    checked = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def test_labelled_children_are_looked_up_once_and_count_in_the_metric(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = Metrics(process_collector=False)
    requests = metrics.rest_client_requests
    looked_up: list[tuple[str, ...]] = []
    labels = requests.labels

    def counting_labels(*values: str) -> object:
        looked_up.append(values)
        return labels(*values)

    monkeypatch.setattr(requests, "labels", counting_labels)
    children = LabelledChildren(requests)
    for _ in range(3):
        children("200", "GET", "api:6443").inc()
    children("409", "PATCH", "api:6443").inc()

    assert looked_up == [("200", "GET", "api:6443"), ("409", "PATCH", "api:6443")]
    sample = metrics.registry.get_sample_value
    assert sample("rest_client_requests_total", {"code": "200", "method": "GET", "host": "api:6443"}) == 3
    assert sample("rest_client_requests_total", {"code": "409", "method": "PATCH", "host": "api:6443"}) == 1
