"""The manager: wires configuration, clients, informers, controllers, servers and leader election.

controller-runtime's ``Manager`` in small. Its life cycle:

1. **Compose** (before :meth:`Manager.start`): a composition function asks the manager for
   shared informers (:meth:`Manager.informer`, one per resource and scope), adds indexes to
   them, registers controllers (:meth:`Manager.add_controller`) and background components
   (:meth:`Manager.add_runnable`), and may register metrics on ``manager.metrics.registry``.
2. **Start**: the metrics and health servers, every informer (on every instance, so a standby
   has a warm cache and takes over quickly), the event recorder, then leader election. When
   this instance becomes leader (or at once, with leader election disabled) the controllers
   start (they register their handlers, wait for their informers to sync, start workers),
   then the runnables that need leadership. The event recorder, leader election and the
   metrics endpoint's reviews each have a client of their own, with its own client-side rate
   limit (``kube.qps``), as in controller-runtime: a burst of reconciles delays neither Events,
   Lease renewals nor scrapes.
3. **Stop** (SIGTERM/SIGINT, :meth:`Manager.shutdown`): controllers stop taking keys and their
   in-flight reconciles get ``shutdownTimeout`` to finish, leader-only runnables stop; only if
   all of that finished is the Lease
   released (so a standby starts at once and never overlaps with a straggling worker); then the
   event recorder flushes, informers and servers stop. Exit status 0.
4. **Lost leadership** (renewal failed for a whole renew deadline): the controllers are
   stopped without waiting and the process exits with status 1, so it restarts cleanly as a
   candidate, as controller-runtime does.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from controller.clock import Clock, RealClock
from controller.events import EventRecorder
from controller.health import HealthServer
from controller.informer import Informer
from controller.kube import Kube, in_cluster_namespace
from controller.leader import LeaderElector, LeaseLock
from controller.listwatch import KubeListerWatcher
from controller.metrics import Metrics, MetricsServer, certificate_source
from controller.metricsauth import MetricsAuthorizer
from controller.ratelimit import RateLimiter
from controller.reconcile import Reconciler
from controller.resource import Resource
from controller.runner import Controller, Predicate, Watch
from controller.settings.loading import ConfigError
from controller.settings.runtime import RuntimeSettings
from controller.transform import CacheDecoder, strip_for_cache

log = structlog.get_logger("controller.manager")

EXIT_OK = 0
EXIT_FAILED = 1


class Runnable(Protocol):
    """Something the manager starts and stops with the process or with leadership."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def unsynced_caches(informers: Iterable[Informer], *, leading: bool) -> str | None:
    """The readiness check of the caches: why this instance is not ready, or None.

    A leader (or an instance without leader election) is ready once what its controllers start
    with is cached: an informer's prompt objects, where it has a prompt selector (the rest is
    listed while the controllers work). A standby is ready only once everything is cached, so a
    rollout hands the Lease over to an instance that starts every controller at once, while the
    old leader goes on working.
    """
    pending = [str(i.resource) for i in informers if not (i.prompt_synced() if leading else i.has_synced())]
    return f"not synced: {', '.join(pending)}" if pending else None


def default_identity() -> str:
    """``<hostname>_<uuid>``: unique per process, recognisable per pod (controller-runtime's choice)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class Manager:
    """Owns every long-running part of the operator process."""

    def __init__(
        self,
        config: RuntimeSettings,
        kube: Kube,
        *,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.kube = kube
        self.metrics = metrics or kube.metrics
        self.clock = clock or RealClock()
        self.identity = config.leader_election.identity or default_identity()
        self._informers: dict[tuple[Resource, tuple[str, ...]], Informer] = {}
        self._controllers: list[Controller] = []
        self._runnables: list[tuple[Runnable, bool]] = []
        self._recorder: EventRecorder | None = None
        # The event recorder's, leader election's and the metrics reviews' clients
        # (Kube.with_own_limiter).
        self._own_clients: list[Kube] = []
        self._elector: LeaderElector | None = None
        self._elector_thread: threading.Thread | None = None
        self._metrics_server: MetricsServer | None = None
        self._health_server: HealthServer | None = None
        self._started = False
        self._stopping = threading.Event()
        self._failed = threading.Event()
        self._controllers_started = threading.Event()
        # HTTPS with reviewed tokens when metrics.secure; a certificate problem is a configuration
        # error, reported before anything starts.
        self._metrics_tls = certificate_source(config.metrics)
        self._lease_namespace = ""
        if config.leader_election.enabled:
            self._lease_namespace = config.leader_election.namespace or in_cluster_namespace() or ""
            if not self._lease_namespace:
                raise ConfigError(
                    "leaderElection.namespace",
                    "must be set when running outside a cluster (or disable leader election)",
                )

    # ---- composition --------------------------------------------------------------------------

    def informer(
        self,
        resource: Resource,
        *,
        namespaces: Sequence[str] | None = None,
        prompt_selector: str | None = None,
    ) -> Informer:
        """Returns the shared informer for ``resource``, creating it on first use.

        Namespaced resources are watched in ``watchNamespaces`` (all namespaces when empty)
        unless ``namespaces`` says otherwise; cluster-scoped ones everywhere. The cache keeps
        what :func:`controller.transform.strip_for_cache` keeps of each object (decoded into
        that form directly when ``resource.fields`` is known). Call before
        :meth:`start`; add indexes right after getting the informer.

        ``prompt_selector`` (a field selector) names the objects listed first: controllers added
        with ``complete_cache=False`` start, and a leader is ready (:func:`unsynced_caches`),
        once they are cached; the rest is listed while the watch runs (see
        :class:`~controller.informer.Informer`). It is the informer's: asking for the same
        informer with another one is an error.
        """
        scope = tuple(self.config.watch_namespaces if namespaces is None else namespaces)
        if not resource.namespaced:
            scope = ()
        key = (resource, scope)
        informer = self._informers.get(key)
        if informer is None:
            if self._started:
                raise RuntimeError("informers must be requested before the manager starts")
            # Objects whose top-level fields are known are decoded straight into the cached
            # form; others are decoded whole and then stripped.
            decoder = CacheDecoder(resource.fields) if resource.fields is not None else None
            informer = Informer(
                resource,
                lambda namespace: KubeListerWatcher(self.kube, resource, namespace, decoder),
                namespaces=scope,
                resync_period=self.config.resync_period or None,
                clock=self.clock,
                transform=None if decoder else strip_for_cache,
                prompt_selector=prompt_selector,
            )
            self._informers[key] = informer
        elif prompt_selector is not None and prompt_selector != informer.prompt_selector:
            raise ValueError(
                f"the informer of {resource} lists {informer.prompt_selector!r} first, "
                f"not {prompt_selector!r}"
            )
        return informer

    def start_informers(self) -> None:
        """Starts every informer requested so far, as client-go's ``SharedInformerFactory.Start``
        does: they list and watch while the rest of the process is composed. :meth:`start` calls
        it again for the informers requested since. Starting one twice does nothing."""
        for informer in self._informers.values():
            informer.start()

    def add_controller(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        primary: Informer,
        watches: Sequence[Watch] = (),
        workers: int | None = None,
        rate_limiter: RateLimiter | None = None,
        predicate: Predicate | None = None,
        complete_cache: bool = True,
    ) -> Controller:
        """Registers a controller; it runs only while this instance leads. Names must be unique.

        With a ``predicate``, changes of primary objects that fail it are not queued (see
        :class:`~controller.runner.Controller`). With ``complete_cache=False`` its workers start
        once the informers' prompt objects are cached, before the rest (see :meth:`informer`).
        """
        if any(c.name == name for c in self._controllers):
            raise ValueError(f"a controller named {name!r} already exists")
        if self._started:
            raise RuntimeError("controllers must be added before the manager starts")
        controller = Controller(
            name,
            reconciler,
            primary=primary,
            watches=watches,
            workers=workers or self.config.workers,
            metrics=self.metrics,
            clock=self.clock,
            rate_limiter=rate_limiter,
            predicate=predicate,
            complete_cache=complete_cache,
        )
        self._controllers.append(controller)
        return controller

    def add_runnable(self, runnable: Runnable, *, needs_leader: bool = True) -> None:
        """Registers a background component (e.g. a poller that enqueues keys).

        With ``needs_leader`` it runs only while this instance leads, after the controllers
        that start on the prompt objects (``complete_cache=False``) have started and before the
        others, and is stopped before the lease is released; otherwise it runs from
        :meth:`start` to the end of :meth:`shutdown`.
        """
        if self._started:
            raise RuntimeError("runnables must be added before the manager starts")
        self._runnables.append((runnable, needs_leader))

    @property
    def event_recorder(self) -> EventRecorder:
        """The process's event recorder (started with the manager)."""
        if self._recorder is None:
            self._recorder = EventRecorder(
                self._own_client(),
                instance=self.identity,
                clock=self.clock,
                dropped=self.metrics.events_dropped,
            )
        return self._recorder

    def _own_client(self) -> Kube:
        client = self.kube.with_own_limiter()
        self._own_clients.append(client)
        return client

    @property
    def controllers(self) -> Sequence[Controller]:
        return tuple(self._controllers)

    @property
    def informers(self) -> Sequence[Informer]:
        return tuple(self._informers.values())

    # ---- state ------------------------------------------------------------------------------

    @property
    def metrics_port(self) -> int | None:
        return self._metrics_server.port if self._metrics_server else None

    @property
    def health_port(self) -> int | None:
        return self._health_server.port if self._health_server else None

    def is_leader(self) -> bool:
        if self._elector is None:
            return self._started
        return self._elector.leading

    @property
    def controllers_started(self) -> bool:
        return self._controllers_started.is_set()

    @property
    def failed(self) -> bool:
        """True once the manager cannot go on (leadership lost, caches never synced)."""
        return self._failed.is_set()

    def wait_failed(self, timeout: float | None = None) -> bool:
        return self._failed.wait(timeout)

    # ---- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts servers, informers, the event recorder, then leader election (or controllers)."""
        if self._started:
            raise RuntimeError("the manager was already started")
        self._started = True
        if self.config.metrics.bind_address != "0":
            self._metrics_server = MetricsServer(
                self.config.metrics.bind_address,
                self.metrics.registry,
                tls=self._metrics_tls,
                authorizer=MetricsAuthorizer(self._own_client()) if self._metrics_tls else None,
            )
            self._metrics_server.start()
        if self.config.health.bind_address != "0":
            self._health_server = HealthServer(self.config.health.bind_address)
            self._health_server.ready.add("informers", self._informers_synced)
            self._health_server.ready.add("leader-election", self._election_running)
            self._health_server.start()
        self.start_informers()
        self.event_recorder.start()
        for runnable, needs_leader in self._runnables:
            if not needs_leader:
                runnable.start()
        le = self.config.leader_election
        if le.enabled:
            lock = LeaseLock(
                self._own_client(), self._lease_namespace, le.name, timeout=max(1.0, le.renew_deadline / 2)
            )
            self._elector = LeaderElector(
                lock,
                self.identity,
                name=le.name,
                lease_duration=le.lease_duration,
                renew_deadline=le.renew_deadline,
                retry_period=le.retry_period,
                on_started_leading=self._start_controllers,
                on_stopped_leading=self._on_stopped_leading,
                metrics=self.metrics,
                clock=self.clock,
            )
            self._elector_thread = threading.Thread(
                target=self._elector.run, name="leader-election", daemon=True
            )
            self._elector_thread.start()
        else:
            threading.Thread(target=self._start_controllers, name="start-controllers", daemon=True).start()
        log.info(
            "manager started",
            identity=self.identity,
            leader_election=le.enabled,
            metrics_port=self.metrics_port,
            metrics_secure=self._metrics_tls is not None,
            health_port=self.health_port,
        )

    def _start_controllers(self) -> None:
        log.info("starting controllers", controllers=[c.name for c in self._controllers])
        # Each start waits for its informers: those that need only the prompt objects first,
        # then the runnables, then those that wait for everything to be listed.
        prompt = [c for c in self._controllers if not c.complete_cache]
        complete = [c for c in self._controllers if c.complete_cache]
        try:
            for controller in prompt:
                if self._stopping.is_set():
                    return
                controller.start()
            for runnable, needs_leader in self._runnables:
                if needs_leader and not self._stopping.is_set():
                    runnable.start()
            for controller in complete:
                if self._stopping.is_set():
                    return
                controller.start()
        except Exception:
            log.exception("could not start controllers")
            self._failed.set()
            return
        self._controllers_started.set()

    def _on_stopped_leading(self) -> None:
        if self._stopping.is_set():
            return
        log.error("leader election lost", identity=self.identity)
        self._failed.set()

    def _informers_synced(self) -> str | None:
        return unsynced_caches(self._informers.values(), leading=self.is_leader())

    def _election_running(self) -> str | None:
        if self._elector_thread is None or self._elector_thread.is_alive() or self._stopping.is_set():
            return None
        return "leader election has stopped"

    # ---- run and stop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Starts, waits for ``stop`` (or a failure), shuts down; returns the exit status."""
        self.start()
        while not stop.is_set() and not self._failed.is_set():
            stop.wait(0.5)
        return self.shutdown()

    def shutdown(self) -> int:
        """Stops everything (see the module docstring); returns 0 after a clean stop, else 1."""
        self._stopping.set()
        failed = self._failed.is_set()
        timeout = 0.0 if failed else self.config.shutdown_timeout
        log.info("shutting down", drain_timeout=timeout)
        drained = self._stop_controllers(timeout)
        drained = self._stop_runnables(needs_leader=True) and drained
        if not drained:
            log.error("in-flight reconciles did not finish in time", timeout=timeout)
        if self._elector is not None and self._elector_thread is not None:
            # Release only once no worker can still write: a standby takes over at once.
            self._elector.stop(release=drained and not failed)
            self._elector_thread.join(self.config.leader_election.renew_deadline + 1.0)
        self._stop_runnables(needs_leader=False)
        if self._recorder is not None:
            self._recorder.stop(timeout=2.0)
        for informer in self._informers.values():
            informer.stop()
        for server in (self._health_server, self._metrics_server):
            if server is not None:
                server.stop()
        for client in self._own_clients:
            client.close()
        status = EXIT_OK if drained and not failed else EXIT_FAILED
        log.info("stopped", exit_status=status)
        return status

    def _stop_runnables(self, *, needs_leader: bool) -> bool:
        ok = True
        for runnable, leader_only in reversed(self._runnables):
            if leader_only != needs_leader:
                continue
            try:
                runnable.stop()
            except Exception:
                log.exception("could not stop a runnable", runnable=type(runnable).__name__)
                ok = False
        return ok

    def _stop_controllers(self, timeout: float) -> bool:
        results: dict[str, bool] = {}

        def stop(controller: Controller) -> None:
            results[controller.name] = controller.stop(timeout)

        threads = [threading.Thread(target=stop, args=(c,), daemon=True) for c in self._controllers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 1.0)
        return all(results.get(c.name, False) for c in self._controllers)
