"""The composition's choices that make a restart safe and quick: which controllers start before the
completed Runs are listed, and what waits for them."""

from __future__ import annotations

from typing import Any

import pytest

from controller.kube import Kube
from controller.manager import Manager
from controller.metrics import Metrics
from kfp_operator import settings
from kfp_operator.wiring import add_controllers
from reconcilers.api import RUNS, TTL_ANNOTATION, UNCOMPLETED_RUNS
from tests.support.objects import run


def test_only_controllers_that_reconcile_a_run_from_itself_start_before_every_run_is_cached(
    control_plane: Any, namespace: str
) -> None:
    kube = Kube(control_plane.admin_configuration(), Metrics(process_collector=False))
    try:
        config = settings.load({"watchNamespaces": [namespace], "leaderElection.enabled": False})
        manager = Manager(config, kube)
        add_controllers(manager, config)
        assert manager.informer(RUNS).prompt_selector == UNCOMPLETED_RUNS
        starts_early = {c.name for c in manager.controllers if not c.complete_cache}
        # The others read a RunConfiguration's or a Pipeline's Runs together (its history, its
        # latest succeeded run, the versions in use): with part of the Runs they would write a
        # wrong status, and a wrong latest succeeded run would trigger dependent RunConfigurations.
        assert starts_early == {"run", "run-completion-event"}
        assert {c.name for c in manager.controllers} >= {
            "runconfiguration",
            "runconfiguration-latest-run",
            "run-ttl",
            "pipeline",
            "experiment",
        }
        # The Run cache's gauges wait for every Run (nothing is listed here: the manager never
        # started), so a restart shows no dip in them.
        assert manager.metrics.registry.get_sample_value("kfp_operator_runs", {"phase": "pending"}) is None
    finally:
        kube.close()


@pytest.mark.parametrize(("ttl", "queued"), [("", False), ("1h", True)], ids=["no TTL", "a TTL"])
def test_completed_runs_go_to_the_ttl_controller_only_when_a_ttl_may_apply(
    control_plane: Any, namespace: str, ttl: str, queued: bool
) -> None:
    kube = Kube(control_plane.admin_configuration(), Metrics(process_collector=False))
    try:
        config = settings.load(
            {"watchNamespaces": [namespace], "leaderElection.enabled": False, "runCompletionTTL": ttl}
        )
        manager = Manager(config, kube)
        add_controllers(manager, config)
        (ttl_controller,) = [c for c in manager.controllers if c.name == "run-ttl"]
        assert ttl_controller.predicate is not None
        completed = {"providerId": "kfp:r-1", "completionState": "Succeeded"}
        assert ttl_controller.predicate(run(status=completed)) is queued
        # A Run's own TTL applies without a global one.
        assert ttl_controller.predicate(run(status=completed, annotations={TTL_ANNOTATION: "5m"}))
    finally:
        kube.close()
