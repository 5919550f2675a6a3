"""Keeping each RunConfiguration's ``status.latestRuns.succeeded`` current from its Runs.

Reconciled per RunConfiguration, so two of its Runs completing together are
handled one after the other, never racing. The choice is level-triggered: the
newest succeeded Run (by KFP finish time) among those that belong to it, and
never one older than what the status already holds, so a late completion of an
older run cannot replace newer artifacts.
"""

from __future__ import annotations

import structlog

from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store, namespaced_index_value
from reconcilers.api import RUN_CONFIGURATIONS
from reconcilers.api.run import RunView
from reconcilers.clients import EventRecorder, KubeClient
from reconcilers.indexes import OWNER_INDEX
from reconcilers.runconfiguration.latest import desired_latest, latest_succeeded

log = structlog.get_logger(__name__)


class LatestRunReconciler:
    def __init__(
        self, *, runs: Store, run_configurations: Store, kube: KubeClient, recorder: EventRecorder
    ) -> None:
        self._runs = runs
        self._run_configurations = run_configurations
        self._kube = kube
        self._recorder = recorder

    def reconcile(self, key: ObjectKey) -> Result:
        rc = self._run_configurations.get(key)
        if rc is None:
            return Result()
        runs = [RunView(r) for r in self._runs.by_index(OWNER_INDEX, namespaced_index_value(*key))]
        current = ((rc.get("status") or {}).get("latestRuns") or {}).get("succeeded")
        desired = desired_latest(current, latest_succeeded(runs))
        if desired is None:
            return Result()
        # Conditional on the version read: a concurrent writer makes this fail and retry on fresh data.
        self._kube.patch_status(
            RUN_CONFIGURATIONS,
            key,
            {"latestRuns": {"succeeded": desired}},
            resource_version=rc["metadata"]["resourceVersion"],
        )
        self._recorder.event(
            rc,
            "Normal",
            "LatestRunUpdated",
            f"latest succeeded run is now {desired['providerId']} of Run {desired['runName']}",
        )
        log.info("latest succeeded run updated", run=desired["runName"], provider_id=desired["providerId"])
        return Result()
