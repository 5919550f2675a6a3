"""The event recorder: aggregation of repeats, the spam filter, expiry, and its Event objects."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Counter
from structlog.testing import capture_logs

from controller.clock import FakeClock
from controller.events import DROP_LOG_INTERVAL, NORMAL, WARNING, EventRecorder
from controller.keys import ObjectKey

RUN = {
    "apiVersion": "pipelines.kubeflow.org/v1alpha5",
    "kind": "Run",
    "metadata": {"name": "r1", "namespace": "ns", "uid": "u-1", "resourceVersion": "5"},
}


class FakeSink:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.patches: list[tuple[ObjectKey, dict[str, Any]]] = []
        self.expired: set[str] = set()

    def create_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        self.created.append(dict(event))
        return dict(event)

    def patch(
        self, resource: Any, key: ObjectKey, patch: Mapping[str, Any], *, subresource: str = ""
    ) -> dict:
        if key.name in self.expired:
            raise ApiException(status=404)
        self.patches.append((key, dict(patch)))
        return {}


def recorder(sink: FakeSink, clock: FakeClock | None = None, **kwargs: Any) -> EventRecorder:
    return EventRecorder(sink, instance="pod-1", clock=clock or FakeClock(), **kwargs)


def record(rec: EventRecorder, *events: tuple[str, str, str]) -> None:
    rec.start()
    for kind, reason, message in events:
        rec.event(RUN, kind, reason, message)
    assert rec.flush(10)
    rec.stop()


def test_an_event_names_the_object_and_the_operator() -> None:
    sink = FakeSink()
    record(recorder(sink), (WARNING, "PipelineNotFound", "pipeline p does not exist"))
    (event,) = sink.created
    assert event["involvedObject"] == {
        "apiVersion": "pipelines.kubeflow.org/v1alpha5",
        "kind": "Run",
        "name": "r1",
        "namespace": "ns",
        "uid": "u-1",
        "resourceVersion": "5",
    }
    assert event["metadata"]["namespace"] == "ns" and event["metadata"]["name"].startswith("r1.")
    assert (event["type"], event["reason"], event["message"]) == (
        WARNING,
        "PipelineNotFound",
        "pipeline p does not exist",
    )
    assert event["count"] == 1 and event["firstTimestamp"] == event["lastTimestamp"] == "2030-01-01T00:00:00Z"
    assert event["source"] == {"component": "kfp-operator"}
    assert event["reportingComponent"] == "kfp-operator" and event["reportingInstance"] == "pod-1"


def test_repeats_bump_the_count_instead_of_creating_events() -> None:
    sink, clock = FakeSink(), FakeClock()
    rec = recorder(sink, clock)
    rec.start()
    rec.event(RUN, NORMAL, "Waiting", "waiting for rc")
    rec.flush(10)
    clock.step(60)
    rec.event(RUN, NORMAL, "Waiting", "waiting for rc")
    rec.event(RUN, NORMAL, "Waiting", "waiting for rc")
    rec.event(RUN, NORMAL, "Waiting", "something else")
    rec.flush(10)
    rec.stop()
    assert [e["message"] for e in sink.created] == ["waiting for rc", "something else"]
    name = sink.created[0]["metadata"]["name"]
    assert sink.patches == [
        (ObjectKey("ns", name), {"count": 2, "lastTimestamp": "2030-01-01T00:01:00Z"}),
        (ObjectKey("ns", name), {"count": 3, "lastTimestamp": "2030-01-01T00:01:00Z"}),
    ]


def test_an_expired_event_is_created_again() -> None:
    sink = FakeSink()
    rec = recorder(sink)
    record(rec, (NORMAL, "Waiting", "w"))
    sink.expired.add(sink.created[0]["metadata"]["name"])
    record(rec, (NORMAL, "Waiting", "w"))
    assert len(sink.created) == 2 and sink.created[1]["count"] == 1


def test_spam_filter_limits_writes_per_object() -> None:
    sink, clock = FakeSink(), FakeClock()
    rec = recorder(sink, clock, spam_burst=3, spam_refill_seconds=300)
    record(rec, *[(NORMAL, "Poll", f"attempt {i}") for i in range(10)])
    assert len(sink.created) == 3, "a burst of 3 writes, then nothing until tokens refill"
    clock.step(300)
    record(rec, (NORMAL, "Poll", "after a while"))
    assert len(sink.created) == 4


def test_invalid_input_is_rejected_at_once() -> None:
    rec = recorder(FakeSink())
    with pytest.raises(ValueError, match="type"):
        rec.event(RUN, "Error", "X", "y")
    with pytest.raises(ValueError, match="kind"):
        rec.event({"metadata": {"name": "x"}}, NORMAL, "X", "y")


def dropped_counter() -> Counter:
    return Counter("dropped", "events dropped", ["reason"], registry=CollectorRegistry())


def test_events_dropped_for_a_full_queue_are_counted() -> None:
    sink, dropped = FakeSink(), dropped_counter()
    rec = recorder(sink, queue_size=2, dropped=dropped)

    for n in range(5):  # the writer is not started: the queue holds two
        rec.event(RUN, NORMAL, "Submitted", f"run {n}")
    record(rec)

    assert len(sink.created) == 2
    assert dropped.labels("queue_full")._value.get() == 3


def test_events_dropped_by_the_spam_filter_or_a_failed_write_are_counted() -> None:
    class RefusingSink(FakeSink):
        def create_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
            if event["reason"] == "Refused":
                raise ApiException(status=403)
            return super().create_event(event)

    sink, dropped = RefusingSink(), dropped_counter()
    rec = recorder(sink, spam_burst=2, dropped=dropped)

    record(rec, (NORMAL, "Refused", "a"), (NORMAL, "Fine", "b"), (NORMAL, "Fine", "c"))

    assert [e["message"] for e in sink.created] == ["b"]
    assert dropped.labels("write_failed")._value.get() == 1
    assert dropped.labels("spam_filtered")._value.get() == 1


def run_named(name: str) -> dict[str, Any]:
    return {**RUN, "metadata": {**RUN["metadata"], "name": name, "uid": f"uid-{name}"}}


def test_several_writers_write_at_once_and_each_objects_events_in_order() -> None:
    class SlowSink(FakeSink):
        """The first four writes wait for each other: only four writers at once get past."""

        def __init__(self) -> None:
            super().__init__()
            self.together = threading.Barrier(4, timeout=10)
            self.lock = threading.Lock()

        def create_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
            with self.lock:
                first = len(self.created) < 4
                self.created.append(dict(event))
            if first:
                self.together.wait()
            return dict(event)

    sink = SlowSink()
    rec = recorder(sink, writers=4)
    rec.start()
    # 200 objects: every writer gets some of them.
    for step in range(3):
        for n in range(200):
            rec.event(run_named(f"r{n}"), NORMAL, "Step", f"step {step}")
    assert rec.flush(10)
    rec.stop()

    assert not sink.together.broken, "four writes were in flight at once"
    assert len(sink.created) == 600
    for n in range(200):
        messages = [e["message"] for e in sink.created if e["involvedObject"]["name"] == f"r{n}"]
        assert messages == ["step 0", "step 1", "step 2"]


def test_dropped_events_are_logged_once_per_interval_with_their_count() -> None:
    clock = FakeClock()
    rec = recorder(FakeSink(), clock, writers=1, queue_size=1)

    with capture_logs() as logs:
        for n in range(50):  # the writer is not started: the queue holds one, 49 are dropped
            rec.event(RUN, NORMAL, "Submitted", f"run {n}")
        clock.step(DROP_LOG_INTERVAL)
        rec.event(RUN, NORMAL, "Submitted", "run 50")  # dropped, and told with the 48 before it
        for n in range(51, 54):
            rec.event(RUN, NORMAL, "Submitted", f"run {n}")  # three more within the interval
        record(rec)  # the queue is written, and stopping tells the three

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["dropped"] for entry in warnings] == [1, 49, 3]


def test_drops_left_untold_are_told_by_the_next_event_queued_after_the_interval() -> None:
    clock = FakeClock()
    rec = recorder(FakeSink(), clock, writers=1, queue_size=1)
    with capture_logs() as logs:
        for n in range(5):  # the writer is not started: 1 queued, 4 dropped (1 told, 3 not yet)
            rec.event(RUN, NORMAL, "Submitted", f"run {n}")
        rec.start()
        assert rec.flush(10)
        clock.step(DROP_LOG_INTERVAL)
        rec.event(RUN, NORMAL, "Submitted", "queued")
        told = [entry["dropped"] for entry in logs if entry["log_level"] == "warning"]
    rec.stop()

    assert told == [1, 3]
