"""The entry point against a real API server: the Runs are listed while the operator is composed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import kfp_operator.__main__ as entry_point
from controller.keys import ObjectKey
from controller.kube import Kube
from controller.manager import Manager
from controller.metrics import Metrics
from kfp_operator import settings, wiring
from reconcilers.api import RUN_CONFIGURATIONS, RUNS
from tests.support.objects import run

pytestmark = pytest.mark.timeout(120)


def test_the_runs_are_listed_while_the_controllers_are_composed(
    control_plane: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = Kube(control_plane.admin_configuration(), Metrics(process_collector=False), qps=0, burst=0)
    try:
        body = run(name="listed-early", namespace=namespace)
        body["metadata"] = {"name": "listed-early", "namespace": namespace}
        kube.create(RUNS, body)
    finally:
        kube.close()
    composing: dict[str, Any] = {}

    def add_controllers(manager: Manager, config: settings.Config) -> None:
        runs = manager.informer(RUNS)
        composing["runs listed"] = runs.wait_for_sync(30)
        composing["run"] = runs.get(ObjectKey(namespace, "listed-early"))
        composing["run configurations listed"] = manager.informer(RUN_CONFIGURATIONS).wait_for_sync(30)
        raise settings.ConfigError("events", "refused by the test, to end the start here")

    # The process-wide settings a start makes (logging, signals, the collector) stay the test's.
    monkeypatch.setattr(wiring, "add_controllers", add_controllers)
    monkeypatch.setattr(entry_point, "configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setattr(entry_point, "raise_thresholds", lambda: None)
    monkeypatch.setattr(entry_point.signal, "signal", lambda *args: None)

    status = entry_point.main(
        [
            f"--kubeconfig={control_plane.kubeconfig}",
            f"--watch-namespaces={namespace}",
            f"--leader-election-namespace={namespace}",
            "--metrics-bind-address=0",
            "--health-bind-address=0",
        ]
    )

    assert status == entry_point.EXIT_USAGE
    assert composing["runs listed"] and composing["run configurations listed"], composing
    assert composing["run"] is not None, "the Run was in the cache before the controllers existed"
    reflectors = [
        t.name for t in threading.enumerate() if t.name.startswith("reflector-") and namespace in t.name
    ]
    assert reflectors == [], "a start that fails stops the informers it began"
