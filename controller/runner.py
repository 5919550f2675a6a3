"""Controllers: a reconciler, the informers it watches, a rate-limited queue and N workers.

A port of controller-runtime's ``pkg/internal/controller`` (``Start``,
``processNextWorkItem``, ``reconcileHandler``) with sample-controller's shape.

Defining one (through the manager, which owns the shared informers and the metrics)::

    runs = mgr.informer(RUNS)
    rcs = mgr.informer(RUN_CONFIGURATIONS)
    runs.add_indexer(RC_INDEX, referenced_run_configurations)   # Run -> ["<ns>/<rc name>", ...]

    def runs_referencing(rc: dict) -> list[ObjectKey]:           # an RC change -> its Runs
        meta = rc["metadata"]
        return runs.store.index_keys(RC_INDEX, namespaced_index_value(meta["namespace"], meta["name"]))

    mgr.add_controller("run", RunReconciler(...), primary=runs, watches=[Watch(rcs, runs_referencing)])

What happens to a key (the outcome table of controller-runtime's ``reconcileHandler``):

======================================  ===========================  ==============================
reconcile outcome                       queue                        ``reconcile_total{result=}``
======================================  ===========================  ==============================
raises :class:`TerminalError`           nothing (no ``forget``)      ``error`` (+ errors, terminal)
raises anything else                    ``add_rate_limited``         ``error`` (+ errors)
``Result(requeue_after=s)``, ``s > 0``  ``forget`` + ``add_after``   ``requeue_after``
``Result(requeue=True)``                ``add_rate_limited``         ``requeue``
``Result()``                            ``forget``                   ``success``
======================================  ===========================  ==============================

Every reconcile runs on a worker thread with the log context ``controller``, ``controllerGroup``,
``controllerKind``, ``namespace``, ``name`` and a fresh ``reconcileID`` (a UUID; see
:func:`controller.logs.reconcile_context`), and inside :func:`controller.transport.retries_disabled`:
the queue's backoff is the only retry layer for the work it does.
``controller_runtime_active_workers`` is raised around the reconcile and
``controller_runtime_reconcile_time_seconds`` observes its duration.

Python has no panics: every exception is an error, so ``reconcile_panics_total`` stays 0; and
threads cannot be cancelled, so there is no reconcile timeout (``reconcile_timeouts_total``
stays 0). Both are exported so dashboards find them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from controller.clock import Clock, RealClock
from controller.informer import EventHandlerFuncs, HandlerRegistration, Informer
from controller.keys import DeletedFinalStateUnknown, ObjectKey, key_func
from controller.logs import reconcile_context
from controller.metrics import Metrics
from controller.ratelimit import RateLimiter
from controller.reconcile import Reconciler, Result, TerminalError
from controller.store import Obj
from controller.transport import retries_disabled
from controller.workqueue import RateLimitingQueue

log = structlog.get_logger("controller.runner")

# controller-runtime CacheSyncTimeout.
CACHE_SYNC_TIMEOUT = 120.0

MapFunc = Callable[[Mapping[str, Any]], Iterable[ObjectKey]]
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Watch:
    """A secondary source: a change to an object of ``informer`` enqueues ``map_func(obj)``.

    On an update both the old and the new object are mapped (a reference may have been
    removed); on a deletion the last known state is mapped, tombstones included.
    (controller-runtime ``Watches(obj, EnqueueRequestsFromMapFunc(fn))``.)
    """

    informer: Informer
    map_func: MapFunc


class CacheSyncError(RuntimeError):
    """A controller's informers did not sync within the timeout."""


class Controller:
    """Runs ``reconciler`` for keys of ``primary`` (and keys mapped from ``watches``)."""

    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        primary: Informer,
        watches: Sequence[Watch] = (),
        workers: int = 1,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        rate_limiter: RateLimiter | None = None,
        cache_sync_timeout: float = CACHE_SYNC_TIMEOUT,
        start_queue_thread: bool = True,
        predicate: Predicate | None = None,
        complete_cache: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.reconciler = reconciler
        self.primary = primary
        self.watches = tuple(watches)
        # controller-runtime's event filter: a change of a primary object is queued only when
        # the object (its new state, for an update) passes; keys from watches are not filtered.
        self.predicate = predicate
        # Whether the workers wait for every object to be cached, or only for the informers'
        # prompt objects (see Informer's prompt_selector): a controller that reconciles one
        # object from that object alone, and whose objects of interest are the prompt ones,
        # can start before a long history of others is listed.
        self.complete_cache = complete_cache
        self.workers = workers
        self._metrics = metrics or Metrics(process_collector=False)
        self._clock = clock or RealClock()
        self._cache_sync_timeout = cache_sync_timeout
        self.queue: RateLimitingQueue[ObjectKey] = RateLimitingQueue(
            name,
            rate_limiter=rate_limiter,
            clock=self._clock,
            metrics_provider=self._metrics.workqueue_provider,
            start_thread=start_queue_thread,
        )
        self._series = self._metrics.init_controller(name, workers)
        self._log_fields = {
            "controller": name,
            "controllerGroup": primary.resource.group,
            "controllerKind": primary.resource.kind,
        }
        self._registrations: list[tuple[Informer, HandlerRegistration]] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Registers the event handlers, waits for the informers to sync, starts the workers.

        The informers must already be running. Raises :class:`CacheSyncError` if they do not
        sync within the cache-sync timeout.
        """
        self.start_watches()
        informers = [self.primary, *(w.informer for w in self.watches)]
        deadline = self._clock.monotonic() + self._cache_sync_timeout
        for informer in informers:
            remaining = max(0.0, deadline - self._clock.monotonic())
            if not informer.wait_for_sync(remaining, prompt_only=not self.complete_cache):
                raise CacheSyncError(
                    f"controller {self.name}: timed out waiting for {informer.resource} to sync"
                )
        if self._stopping.is_set():
            return
        log.info("starting workers", controller=self.name, workers=self.workers)
        for i in range(self.workers):
            thread = threading.Thread(target=self._worker, name=f"worker-{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def start_watches(self) -> None:
        """Registers the handlers that feed the queue (``start`` does this first)."""
        if self._registrations:
            return
        primary = EventHandlerFuncs(
            add=self._enqueue, update=lambda old, new: self._enqueue(new), delete=self._enqueue
        )
        self._registrations.append((self.primary, self.primary.add_event_handler(primary)))
        for watch in self.watches:
            handler = _mapping_handler(self.queue, watch.map_func)
            self._registrations.append((watch.informer, watch.informer.add_event_handler(handler)))

    def stop(self, timeout: float) -> bool:
        """Stops intake and waits up to ``timeout`` seconds for in-flight reconciles.

        Keys still queued are dropped, not reconciled: whoever runs next lists everything
        again. Returns whether every in-flight reconcile finished in time.
        """
        self._stopping.set()
        for informer, registration in self._registrations:
            informer.remove_event_handler(registration)
        self._registrations.clear()
        deadline = self._clock.monotonic() + timeout
        drained = self.queue.shut_down_with_drain(timeout)
        self.queue.shut_down()
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock.monotonic()))
        return drained and not any(thread.is_alive() for thread in self._threads)

    # ---- queue feeding --------------------------------------------------------------------

    def enqueue(self, key: ObjectKey) -> None:
        """Queues ``key`` for reconciliation, for sources other than informers (e.g. a poller)."""
        self.queue.add(key)

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self.predicate is not None:
            state = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            if not self.predicate(state):
                return
        self.queue.add(key_func(obj))

    # ---- workers --------------------------------------------------------------------------

    def _worker(self) -> None:
        while self.process_next_work_item():
            pass

    def process_next_work_item(self) -> bool:
        """Takes one key, reconciles it, and applies the outcome; ``False`` once shut down."""
        key, shutdown = self.queue.get()
        if shutdown or key is None:
            return False
        try:
            if self._stopping.is_set():
                return True  # intake has stopped: drop the key without reconciling it
            active = self._series.active_workers
            active.inc()
            try:
                self.reconcile_handler(key)
            finally:
                active.dec()
        finally:
            self.queue.done(key)
        return True

    def reconcile_handler(self, key: ObjectKey) -> None:
        """Runs one reconcile of ``key`` and applies the outcome to the queue and the metrics."""
        series = self._series
        with (
            reconcile_context(
                {
                    **self._log_fields,
                    "namespace": key.namespace,
                    "name": key.name,
                    "reconcileID": reconcile_id(),
                }
            ),
            retries_disabled(),
        ):
            started = self._clock.monotonic()
            try:
                result = self.reconciler.reconcile(key)
            except TerminalError as err:
                series.terminal_reconcile_errors.inc()
                self._count_error()
                log.error("Reconciler error", error=str(err), terminal=True, exc_info=True)
                return
            except Exception as err:
                self.queue.add_rate_limited(key)
                self._count_error()
                log.error("Reconciler error", error=str(err), exc_info=True)
                return
            finally:
                series.reconcile_time.observe(self._clock.monotonic() - started)
            self._apply(key, result)

    def _apply(self, key: ObjectKey, result: Result) -> None:
        total = self._series.reconcile_total
        if result.requeue_after is not None and result.requeue_after > 0:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
            total["requeue_after"].inc()
            log.debug("Reconcile done, requeueing after", requeue_after=result.requeue_after)
        elif result.requeue:
            self.queue.add_rate_limited(key)
            total["requeue"].inc()
            log.debug("Reconcile done, requeueing")
        else:
            self.queue.forget(key)
            total["success"].inc()
            log.debug("Reconcile successful")

    def _count_error(self) -> None:
        self._series.reconcile_errors.inc()
        self._series.reconcile_total["error"].inc()


def reconcile_id() -> str:
    """A random version-4 UUID naming one reconcile in the logs (controller-runtime's
    ``reconcileID``). It only tells reconciles apart, so it needs no cryptographic randomness:
    ``uuid.uuid4()`` reads the OS's random source on every call, several times the cost."""
    bits = (random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _mapping_handler(queue: RateLimitingQueue[ObjectKey], map_func: MapFunc) -> EventHandlerFuncs:
    def enqueue(obj: Obj | DeletedFinalStateUnknown) -> None:
        target = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for key in map_func(target):
            queue.add(key)

    def update(old: Obj, new: Obj) -> None:
        for key in {*map_func(old), *map_func(new)}:
            queue.add(key)

    return EventHandlerFuncs(add=enqueue, update=update, delete=enqueue)
