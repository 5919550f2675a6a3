"""The Run cache's gauges: counts by phase, and nothing while the cache is incomplete."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from reconcilers.run_metrics import RunCacheCollector


def run(completion_state: str | None = None, provider_id: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if completion_state:
        status["completionState"] = completion_state
    if provider_id:
        status["providerId"] = provider_id
    return {"metadata": {"name": "r", "namespace": "ns"}, "spec": {}, "status": status}


def phases(registry: CollectorRegistry) -> dict[str, float | None]:
    return {
        phase: registry.get_sample_value("kfp_operator_runs", {"phase": phase})
        for phase in ("pending", "submitted", "succeeded", "failed")
    }


def test_runs_are_counted_by_phase_once_every_run_is_cached() -> None:
    runs = [
        run(),
        run(provider_id="kfp:1"),
        run("Succeeded", "kfp:2"),
        run("Succeeded", "kfp:3"),
        run("Failed"),
    ]
    complete = False
    registry = CollectorRegistry()
    registry.register(RunCacheCollector(lambda: runs, complete=lambda: complete))

    # The completed Runs are still being listed: a count of part of them would show as a dip.
    assert phases(registry) == dict.fromkeys(("pending", "submitted", "succeeded", "failed"))
    complete = True
    assert phases(registry) == {"pending": 1.0, "submitted": 1.0, "succeeded": 2.0, "failed": 1.0}
