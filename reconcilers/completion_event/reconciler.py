"""Delivering each completed Run's run-completion event to every configured sink, at least once.

The run controller delivers an event along with the completion it records, while the sinks
answer (``reconcilers.run.reconciler``); this controller delivers what is left: an event a
sink refused, or one whose Run completed while the sinks were failing, or before a restart.
Progress is recorded in ``status.completionEvent`` (the sinks that acknowledged, and when all
had), so a restart or a retry sends only what is missing, and with the same event id. A sink
that fails is retried with the work queue's backoff for this Run alone; other Runs' events go
out meanwhile, because sinks fail fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store
from reconcilers.api import RUNS
from reconcilers.api.run import RunView
from reconcilers.clients import EventRecorder, KubeClient
from reconcilers.completion_event.delivery import EventDelivery
from reconcilers.expectations import ActedOnVersions

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
        self, *, runs: Store, delivery: EventDelivery, kube: KubeClient, recorder: EventRecorder, clock: Clock
    ) -> None:
        self._runs = runs
        self._delivery = delivery
        self._kube = kube
        self._recorder = recorder
        self._acted_on = ActedOnVersions(clock)

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self._runs.get(key)
        if obj is None or not self._delivery.sinks:
            return Result()
        if self._acted_on.is_stale(key, obj):
            return Result()
        if not needs_delivery(obj):
            return Result()
        run = RunView(obj)
        delivery = self._delivery.deliver(run)
        if delivery.progress != run.status.get("completionEvent"):
            self._kube.patch_status(RUNS, key, {"completionEvent": delivery.progress})
            self._acted_on.acted_on(key, obj)
        if not delivery.complete:
            failures = "; ".join(delivery.failures)
            message = f"run-completion event {delivery.event_id} not delivered: {failures}; retrying"
            self._recorder.event(obj, "Warning", "EventDeliveryFailing", message)
            raise EventDeliveryFailing(message)
        log.info(
            "completion event delivered", event_id=delivery.event_id, sinks=delivery.progress["deliveredTo"]
        )
        return Result()
