"""Kubernetes Events for objects: what ``kubectl describe`` shows users.

:class:`EventRecorder` plays client-go's ``record.EventRecorder`` + ``EventBroadcaster`` +
``EventCorrelator``:

* :meth:`EventRecorder.event` never blocks a reconcile: it queues the event for one of
  :data:`WRITERS` writer threads, always the same one for the same object, so an object's
  Events are written in the order they were recorded. Each writer queues up to
  :data:`QUEUE_SIZE`; beyond that events are dropped, as upstream, counted by the metric and
  logged at most once per :data:`DROP_LOG_INTERVAL` with how many were dropped. client-go
  writes with a single goroutine; with one writer here, completions found in bulk (a poll
  finds hundreds of finished runs at once) filled its queue, and in a burst of 5,000 Runs 44 %
  of the ``Succeeded`` Events were dropped.
* **Aggregation**: an event with the same involved object, type, reason and message as one
  written recently is not created again; the existing Event's ``count`` is incremented and its
  ``lastTimestamp`` moved (a merge patch). If that Event has expired from the API in the
  meantime (404), a new one is created.
* **Spam filter**: each involved object may emit a burst of :data:`SPAM_BURST` writes, then one
  per :data:`SPAM_REFILL_SECONDS` (client-go's ``EventSourceObjectSpamFilter``), so an object
  that keeps waiting and reports it on every poll does not turn into a stream of API writes.
  Reconcilers should still emit events on transitions rather than on every pass.

Events are core/v1 ``Event`` objects in the involved object's namespace (``default`` for
cluster-scoped objects) with ``source.component`` and ``reportingComponent`` set to the
component name (``kfp-operator``) and ``reportingInstance`` to this process's identity.
Writes happen on the writer threads, outside any reconcile, so ``controller.transport`` retries
transient failures there; an event that still cannot be written is logged and dropped.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter

from controller.clock import Clock, RealClock
from controller.keys import ObjectKey
from controller.ratelimit import TokenBucket
from controller.resource import EVENTS

log = structlog.get_logger("controller.events")

NORMAL = "Normal"
WARNING = "Warning"
COMPONENT = "kfp-operator"
WRITERS = 4
QUEUE_SIZE = 1000  # per writer
DROP_LOG_INTERVAL = 10.0  # seconds between two log lines about dropped events
CACHE_SIZE = 4096
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0
MAX_MESSAGE_LENGTH = 1024


class EventSink(Protocol):
    """What the recorder writes through (``controller.kube.Kube`` implements it)."""

    def create_event(self, event: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch(
        self, resource: Any, key: ObjectKey, patch: Mapping[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]: ...


# (uid, kind, namespace, name) of the involved object; an Event adds type, reason and message.
_ObjectKey = tuple[str | None, str, str | None, str]
_EventKey = tuple[str | None, str, str | None, str, str, str, str]


@dataclass(frozen=True)
class _Pending:
    involved: dict[str, str]
    type: str
    reason: str
    message: str
    timestamp: str


@dataclass
class _Recorded:
    namespace: str
    name: str
    count: int


class EventRecorder:
    """Records Events about objects, aggregating repeats; thread-safe."""

    def __init__(
        self,
        sink: EventSink,
        *,
        component: str = COMPONENT,
        instance: str = "",
        clock: Clock | None = None,
        writers: int = WRITERS,
        queue_size: int = QUEUE_SIZE,
        cache_size: int = CACHE_SIZE,
        spam_burst: int = SPAM_BURST,
        spam_refill_seconds: float = SPAM_REFILL_SECONDS,
        dropped: Counter | None = None,
    ) -> None:
        # controller_events_dropped_total, by why: Events are best effort, but on-call should
        # see how many were lost rather than find out from a missing line in kubectl describe.
        self._dropped = dropped
        self._clock = clock or RealClock()
        self._pending = 0
        self._idle = threading.Condition()
        self._drop_log = _DropLog(self._clock)
        self._started = False
        # Aggregation and the spam filter are per object, so each writer keeps its own for the
        # objects routed to it, and no state is shared between writers.
        self._writers = [
            _EventWriter(
                f"event-recorder-{n}",
                sink,
                component=component,
                instance=instance,
                clock=self._clock,
                queue_size=queue_size,
                cache_size=max(1, cache_size // writers),
                spam_burst=spam_burst,
                spam_qps=1.0 / spam_refill_seconds,
                count_dropped=self._count_dropped,
                finished=self._finished,
            )
            for n in range(writers)
        ]

    # ---- API ------------------------------------------------------------------------------

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        """Queues an Event about ``obj`` (an API object as a dict); never blocks.

        ``type`` is :data:`NORMAL` or :data:`WARNING`; ``reason`` is a short UpperCamelCase
        machine-readable word; ``message`` is for humans (truncated to 1024 characters).
        """
        if type not in (NORMAL, WARNING):
            raise ValueError(f"event type must be {NORMAL!r} or {WARNING!r}, not {type!r}")
        pending = _Pending(
            involved=involved_object(obj),
            type=type,
            reason=reason,
            message=message[:MAX_MESSAGE_LENGTH],
            timestamp=_rfc3339(self._clock),
        )
        writer = self._writers[hash(_object_key(pending.involved)) % len(self._writers)]
        with self._idle:
            self._pending += 1
        if writer.offer(pending):
            self._drop_log.tell_if_due()
        else:
            self._finished()
            self._count_dropped("queue_full")
            self._drop_log.dropped(reason=reason, object=pending.involved.get("name"))

    def start(self) -> None:
        self._started = True
        for writer in self._writers:
            writer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Writes what is queued and stops the writer threads, within ``timeout`` in all."""
        if not self._started:
            return
        self._started = False
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        for writer in self._writers:
            writer.stop(max(0.0, deadline - time.monotonic()))
        self._drop_log.tell_if_due(now=True)

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every queued event has been written or dropped; returns whether it did."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # ---- bookkeeping ----------------------------------------------------------------------

    def _count_dropped(self, why: str) -> None:
        if self._dropped is not None:
            self._dropped.labels(why).inc()

    def _finished(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()


class _DropLog:
    """Says that events are being dropped without a line per event: a burst that fills a queue
    drops thousands, and the metric counts each. The first drop is logged at once, then at most
    one line per :data:`DROP_LOG_INTERVAL` with the number dropped since the previous line; drops
    not yet told are told by the first event queued after the interval, or at the recorder's stop."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged: float | None = None
        self._untold = 0

    def dropped(self, **fields: Any) -> None:
        with self._lock:
            self._untold += 1
            count = self._take_if_due()
        if count:
            log.warning("event queue full, dropping events", dropped=count, **fields)

    def tell_if_due(self, *, now: bool = False) -> None:
        if not self._untold:  # the common case, read without the lock
            return
        with self._lock:
            count = self._take_if_due(now=now)
        if count:
            log.warning("event queue was full, events dropped", dropped=count)

    def _take_if_due(self, *, now: bool = False) -> int:
        moment = self._clock.monotonic()
        if not now and self._last_logged is not None and moment - self._last_logged < DROP_LOG_INTERVAL:
            return 0
        count, self._untold, self._last_logged = self._untold, 0, moment
        return count


class _EventWriter:
    """One writer thread with its queue, and the aggregation and spam-filter state of the objects
    whose Events it writes."""

    def __init__(
        self,
        name: str,
        sink: EventSink,
        *,
        component: str,
        instance: str,
        clock: Clock,
        queue_size: int,
        cache_size: int,
        spam_burst: int,
        spam_qps: float,
        count_dropped: Callable[[str], None],
        finished: Callable[[], None],
    ) -> None:
        self._name = name
        self._sink = sink
        self._component = component
        self._instance = instance
        self._clock = clock
        self._queue: queue.Queue[_Pending | None] = queue.Queue(queue_size)
        self._cache_size = cache_size
        self._recorded: OrderedDict[_EventKey, _Recorded] = OrderedDict()
        self._spam_burst = spam_burst
        self._spam_qps = spam_qps
        self._buckets: OrderedDict[_ObjectKey, TokenBucket] = OrderedDict()
        self._count_dropped = count_dropped
        self._finished = finished
        self._thread: threading.Thread | None = None

    def offer(self, pending: _Pending) -> bool:
        """Queues ``pending``; False if the queue is full."""
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            return False
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        if self._thread is None:
            return
        # Still busy after the recorder's flush timeout: the daemon thread then ends with the
        # process.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            pending = self._queue.get()
            if pending is None:
                return
            try:
                self._write(pending)
            except Exception as err:
                self._count_dropped("write_failed")
                log.warning(
                    "could not write event",
                    reason=pending.reason,
                    object=pending.involved.get("name"),
                    error=f"{type(err).__name__}: {getattr(err, 'status', '') or err}",
                )
            finally:
                self._finished()

    def _write(self, pending: _Pending) -> None:
        involved = pending.involved
        object_key = _object_key(involved)
        if not self._allow(object_key):
            self._count_dropped("spam_filtered")
            log.debug("event suppressed by spam filter", reason=pending.reason, object=involved["name"])
            return
        key: _EventKey = (*object_key, pending.type, pending.reason, pending.message)
        recorded = self._recorded.get(key)
        if recorded is not None:
            try:
                self._sink.patch(
                    EVENTS,
                    ObjectKey(recorded.namespace, recorded.name),
                    {"count": recorded.count + 1, "lastTimestamp": pending.timestamp},
                )
                recorded.count += 1
                self._recorded.move_to_end(key)
                return
            except ApiException as err:
                if err.status != 404:
                    raise
                # Events expire (one hour by default); start a new one.
                del self._recorded[key]
        created = self._sink.create_event(self._new_event(pending))
        metadata = created.get("metadata") or {}
        self._recorded[key] = _Recorded(
            metadata["namespace"], metadata["name"], int(created.get("count") or 1)
        )
        while len(self._recorded) > self._cache_size:
            self._recorded.popitem(last=False)

    def _allow(self, object_key: _ObjectKey) -> bool:
        bucket = self._buckets.get(object_key)
        if bucket is None:
            bucket = TokenBucket(self._spam_qps, self._spam_burst, self._clock)
            self._buckets[object_key] = bucket
            while len(self._buckets) > self._cache_size:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(object_key)
        return bucket.try_take()

    def _new_event(self, pending: _Pending) -> dict[str, Any]:
        involved = pending.involved
        namespace = involved.get("namespace") or "default"
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{involved['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved,
            "type": pending.type,
            "reason": pending.reason,
            "message": pending.message,
            "firstTimestamp": pending.timestamp,
            "lastTimestamp": pending.timestamp,
            "count": 1,
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance or self._component,
        }


def _object_key(involved: Mapping[str, str]) -> _ObjectKey:
    return (involved.get("uid"), involved["kind"], involved.get("namespace"), involved["name"])


def involved_object(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` reference of an Event about ``obj``."""
    metadata = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion") or "",
        "kind": obj.get("kind") or "",
        "name": metadata.get("name") or "",
        "namespace": metadata.get("namespace") or "",
        "uid": metadata.get("uid") or "",
        "resourceVersion": metadata.get("resourceVersion") or "",
    }
    if not ref["kind"] or not ref["name"]:
        raise ValueError("an event needs an object with kind and metadata.name")
    return {k: v for k, v in ref.items() if v}


def _rfc3339(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
