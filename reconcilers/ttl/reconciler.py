"""Deleting completed Runs once their TTL has passed (``policy.decide`` says when).

As Kubernetes' TTL-after-finished controller does, the Run is read again from
the API server before deletion (the cache may be behind, for example missing a
new annotation), and deleted with UID and resourceVersion preconditions: a new
Run that reused the name is never deleted by mistake, and a change made after
the decision (a new annotation) makes the delete fail and the decision be taken
again on the new version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store
from reconcilers.api import RUNS, TTL_ANNOTATION
from reconcilers.api.run import RunView
from reconcilers.clients import EventRecorder, KubeClient
from reconcilers.indexes import OWNER_INDEX, runs_by
from reconcilers.run_metrics import RunMetrics
from reconcilers.ttl.policy import Delete, Keep, decide

log = structlog.get_logger(__name__)


def expiry_filter(default_ttl: timedelta | None) -> Callable[[Mapping[str, Any]], bool]:
    """The controller's event filter: whether a Run may ever expire, given the global TTL.

    A TTL runs from completion, so changes of a Run before it completed are not queued
    (``policy.decide`` keeps such a Run, whatever it looks like). Without a global TTL only a
    Run with its own annotation may expire (a bad one is reported by the reconcile): with the
    chart's default, completed Runs do not pass through this controller at all, neither in a
    burst nor when a restart lists tens of thousands of them.
    """

    def may_expire(obj: Mapping[str, Any]) -> bool:
        if not (obj.get("status") or {}).get("completionState"):
            return False
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return default_ttl is not None or TTL_ANNOTATION in annotations

    return may_expire


def owned_runs_that_may_expire(
    runs: Store, may_expire: Callable[[Mapping[str, Any]], bool]
) -> Callable[[Mapping[str, Any]], list[ObjectKey]]:
    """Maps a RunConfiguration to its Runs that may expire: taking a Run's completion releases
    it for deletion, and a change of a RunConfiguration then re-queues only those Runs (not its
    whole history, on each of its status updates, when no TTL applies)."""
    owned = runs_by(runs, OWNER_INDEX)

    def map_func(rc: Mapping[str, Any]) -> list[ObjectKey]:
        return [key for key in owned(rc) if (run := runs.get(key)) is not None and may_expire(run)]

    return map_func


class TtlReconciler:
    def __init__(
        self,
        *,
        runs: Store,
        run_configurations: Store,
        kube: KubeClient,
        recorder: EventRecorder,
        metrics: RunMetrics,
        clock: Clock,
        default_ttl: timedelta | None,
        sinks_configured: bool,
    ) -> None:
        self._runs = runs
        self._run_configurations = run_configurations
        self._kube = kube
        self._recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._default_ttl = default_ttl
        self._sinks_configured = sinks_configured

    def reconcile(self, key: ObjectKey) -> Result:
        cached = self._runs.get(key)
        if cached is None:
            return Result()
        decision = self._decide(RunView(cached))
        if decision.problem is not None:
            self._recorder.event(cached, "Warning", "InvalidTTL", decision.problem)
        if isinstance(decision, Keep):
            return self._keep(decision)
        fresh = self._kube.get_or_none(RUNS, key)
        if fresh is None:
            return Result()
        decision = self._decide(RunView(fresh))
        if isinstance(decision, Keep):
            return self._keep(decision)
        metadata = fresh["metadata"]
        if not self._kube.delete(
            RUNS,
            key,
            uid=metadata["uid"],
            resource_version=metadata["resourceVersion"],
            propagation_policy="Background",
        ):
            return Result()
        self._metrics.ttl_deletions.inc()
        self._recorder.event(
            fresh, "Normal", "DeletedAfterTTL", f"deleted {_seconds(decision.ttl)} after the KFP run finished"
        )
        log.info("deleted after TTL", ttl=_seconds(decision.ttl))
        return Result()

    def _decide(self, run: RunView) -> Delete | Keep:
        owner = run.owning_run_configuration()
        return decide(
            run,
            default_ttl=self._default_ttl,
            now=self._clock.now(),
            sinks_configured=self._sinks_configured,
            run_configuration=self._run_configurations.get(ObjectKey(run.namespace, owner))
            if owner
            else None,
        )

    @staticmethod
    def _keep(decision: Keep) -> Result:
        if decision.recheck_after is None:
            return Result()  # a change to the Run or its RunConfiguration re-triggers this
        return Result(requeue_after=max(decision.recheck_after.total_seconds(), 0.001))


def _seconds(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}s"
