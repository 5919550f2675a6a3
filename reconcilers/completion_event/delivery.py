"""Handing a completed Run's run-completion event to the sinks that have not acknowledged it.

Both the completion-event controller and the run controller deliver (the run controller
along with the completion it records, the completion-event controller whatever is left), so
both record the same progress in ``status.completionEvent``: the event's id, the sinks that
acknowledged it, and once all had, when.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.clock import Clock
from reconcilers.api.run import RunView
from reconcilers.clients import DeliveryFailed, Sink
from reconcilers.completion_event.event import completion_event
from reconcilers.run_metrics import RunMetrics
from reconcilers.timestamps import format_time


@dataclass(frozen=True)
class Delivery:
    """What one attempt achieved: the progress to record, and why any sink did not take it."""

    event_id: str
    progress: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures


class EventDelivery:
    def __init__(self, *, sinks: Sequence[Sink], metrics: RunMetrics, clock: Clock, provider: str) -> None:
        self.sinks = list(sinks)
        self._metrics = metrics
        self._clock = clock
        self._provider = provider

    def deliver(self, run: RunView) -> Delivery:
        """Publishes the event of ``run`` (completed) to every sink not yet recorded as having it.

        The caller logs the outcome: the run controller in the line that records the completion
        the event went out with, the completion-event controller in its own."""
        recorded: Mapping[str, Any] = run.status.get("completionEvent") or {}
        delivered = list(recorded.get("deliveredTo") or [])
        event = completion_event(run, self._provider)
        failures = []
        for sink in self.sinks:
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
        progress: dict[str, Any] = {"id": event["id"], "deliveredTo": delivered}
        if not failures:
            progress["deliveredAt"] = format_time(self._clock.now())
        return Delivery(event["id"], progress, failures)
