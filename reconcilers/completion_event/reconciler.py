"""Delivering each completed Run's run-completion event to every configured sink, at least once.

Progress is recorded in ``status.completionEvent`` (the sinks that acknowledged,
and when all had), so a restart or a retry sends only what is missing, and with
the same event id. A sink that fails is retried with the work queue's backoff for
this Run alone; other Runs' events go out meanwhile, because sinks fail fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store
from reconcilers.api import RUNS
from reconcilers.api.run import RunView
from reconcilers.clients import DeliveryFailed, EventRecorder, KubeClient, Sink
from reconcilers.completion_event.event import completion_event
from reconcilers.expectations import ActedOnVersions
from reconcilers.run_metrics import RunMetrics
from reconcilers.timestamps import format_time

log = structlog.get_logger(__name__)


def needs_delivery(obj: Mapping[str, Any]) -> bool:
    """The controller's event filter: only a completed Run whose event is not delivered yet has
    anything for it to do, so no other change of a Run is queued to it."""
    status = obj.get("status") or {}
    return bool(status.get("completionState")) and not (status.get("completionEvent") or {}).get(
        "deliveredAt"
    )


class EventDeliveryFailing(Exception):
    """At least one sink did not acknowledge; the Run is retried with backoff."""


class CompletionEventReconciler:
    def __init__(
        self,
        *,
        runs: Store,
        sinks: Sequence[Sink],
        kube: KubeClient,
        recorder: EventRecorder,
        metrics: RunMetrics,
        clock: Clock,
        provider: str,
    ) -> None:
        self._runs = runs
        self._sinks = list(sinks)
        self._kube = kube
        self._recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._provider = provider
        self._acted_on = ActedOnVersions(clock)

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self._runs.get(key)
        if obj is None or not self._sinks:
            return Result()
        if self._acted_on.is_stale(key, obj):
            return Result()
        run = RunView(obj)
        if not run.is_completed:
            return Result()
        recorded = run.status.get("completionEvent") or {}
        if recorded.get("deliveredAt"):
            return Result()
        delivered = list(recorded.get("deliveredTo") or [])
        event = completion_event(run, self._provider)
        failures = []
        for sink in self._sinks:
            if sink.name in delivered:
                continue
            try:
                sink.publish(event)
            except DeliveryFailed as error:
                failures.append(str(error))
                self._metrics.event_deliveries.labels(sink.name, "failed").inc()
                continue
            delivered.append(sink.name)
            self._metrics.event_deliveries.labels(sink.name, "delivered").inc()
        progress = {"id": event["id"], "deliveredTo": delivered}
        if not failures:
            progress["deliveredAt"] = format_time(self._clock.now())
        if progress != recorded:
            self._kube.patch_status(RUNS, key, {"completionEvent": progress})
            self._acted_on.acted_on(key, obj)
        if failures:
            message = f"run-completion event {event['id']} not delivered: {'; '.join(failures)}; retrying"
            self._recorder.event(obj, "Warning", "EventDeliveryFailing", message)
            raise EventDeliveryFailing(message)
        log.info("completion event delivered", event_id=event["id"], sinks=delivered)
        return Result()
