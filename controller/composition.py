"""Which controllers the operator runs: the composition root.

:func:`add_controllers` is called by ``kfp-operator`` (``controller.__main__.main``) with the
:class:`~controller.manager.Manager` before it starts. It is the one module of ``controller``
that knows the reconcilers: it builds the clients from the configuration, asks the manager
for the shared informers, adds the indexes the reconcilers look things up by, and registers:

* ``run``: resolution, submission, tracking and completion of each Run (also re-triggered by
  changes of the RunConfigurations its parameters reference, and by the KFP run tracker);
* ``run-completion-event``: delivery of each completed Run's event to the sinks;
* ``runconfiguration-latest-run``: each RunConfiguration's latest succeeded run;
* ``run-ttl``: deletion of completed Runs after their TTL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from controller.informer import Informer
from controller.keys import ObjectKey
from controller.kfp import KfpClient, KfpConfig, KfpMetrics
from controller.manager import Manager
from controller.mlmd import MeteredMetadataStore, MlmdMetrics
from controller.ratelimit import ItemExponentialFailureRateLimiter
from controller.runner import Watch
from controller.sinks import HttpSink, NatsSink, Sink
from controller.store import Obj, namespaced_index_value
from reconcilers.api import RUN_CONFIGURATIONS, RUNS
from reconcilers.api.run import RunView
from reconcilers.catalog import CachedKfpCatalog
from reconcilers.cleanup import TtlReconciler
from reconcilers.completion_events import CompletionEventReconciler
from reconcilers.kfp_tracker import TRACKED_INDEX, KfpRunTracker, tracked_run_index
from reconcilers.metrics import RunCacheCollector, RunMetrics
from reconcilers.run import RunReconciler, RunSettings
from reconcilers.run_configuration import (
    OWNER_INDEX,
    REFERENCE_INDEX,
    LatestRunReconciler,
    owner_index,
    reference_index,
)

CATALOG_TTL = 10.0
# A sink that is down is retried at least this often once it is back, however long it was down.
EVENT_RETRY_MAX_DELAY = 30.0


def add_controllers(mgr: Manager) -> None:
    config = mgr.config
    registry = mgr.metrics.registry
    run_metrics = RunMetrics(registry)

    runs = mgr.informer(RUNS)
    run_configurations = mgr.informer(RUN_CONFIGURATIONS)
    runs.add_indexer(TRACKED_INDEX, tracked_run_index)
    runs.add_indexer(OWNER_INDEX, owner_index)
    runs.add_indexer(REFERENCE_INDEX, reference_index)
    registry.register(RunCacheCollector(runs.list))

    kfp = KfpClient(
        KfpConfig(
            endpoint=config.kfp.endpoint,
            token_path=Path(config.kfp.token_path) if config.kfp.token_path else None,
            multi_user=config.kfp.multi_user,
        ),
        KfpMetrics(registry),
        pool_size=max(config.workers * 2, 10),
    )
    metadata = MeteredMetadataStore(config.mlmd.host, config.mlmd.port, MlmdMetrics(registry))
    sinks = _sinks(mgr)

    tracker = KfpRunTracker(
        kfp,
        runs.store,
        lambda key: run_controller.enqueue(key),
        runs_synced=runs.has_synced,
        clock=mgr.clock,
        poll_interval=config.poll_interval,
        safety_check_interval=config.safety_check_interval,
    )
    run_controller = mgr.add_controller(
        "run",
        RunReconciler(
            runs=runs.store,
            run_configurations=run_configurations.store,
            kube=mgr.kube,
            kfp=kfp,
            # Answers are cached for half the recheck interval: a waiting Run sees a pipeline
            # uploaded meanwhile at its next recheck, and a burst shares one lookup.
            catalog=CachedKfpCatalog(
                kfp, ttl_seconds=min(CATALOG_TTL, config.dependency_recheck_interval / 2)
            ),
            tracker=tracker,
            metadata=metadata,
            recorder=mgr.event_recorder,
            metrics=run_metrics,
            clock=mgr.clock,
            settings=RunSettings(
                provider=config.provider,
                default_experiment=config.default_experiment,
                dependency_recheck_interval=config.dependency_recheck_interval,
                deletion_timeout=timedelta(seconds=config.deletion_timeout),
            ),
        ),
        primary=runs,
        watches=[Watch(run_configurations, _runs_by(runs, REFERENCE_INDEX))],
    )
    mgr.add_runnable(tracker, needs_leader=True)

    mgr.add_controller(
        "run-completion-event",
        CompletionEventReconciler(
            runs=runs.store,
            sinks=sinks,
            kube=mgr.kube,
            recorder=mgr.event_recorder,
            metrics=run_metrics,
            clock=mgr.clock,
            provider=config.provider,
        ),
        primary=runs,
        rate_limiter=ItemExponentialFailureRateLimiter(max_delay=EVENT_RETRY_MAX_DELAY),
    )

    mgr.add_controller(
        "runconfiguration-latest-run",
        LatestRunReconciler(
            runs=runs.store,
            run_configurations=run_configurations.store,
            kube=mgr.kube,
            recorder=mgr.event_recorder,
        ),
        primary=run_configurations,
        watches=[Watch(runs, _owner_of)],
    )

    mgr.add_controller(
        "run-ttl",
        TtlReconciler(
            runs=runs.store,
            run_configurations=run_configurations.store,
            kube=mgr.kube,
            recorder=mgr.event_recorder,
            metrics=run_metrics,
            clock=mgr.clock,
            default_ttl=(
                timedelta(seconds=config.run_completion_ttl)
                if config.run_completion_ttl is not None
                else None
            ),
            sinks_configured=bool(sinks),
        ),
        primary=runs,
        watches=[Watch(run_configurations, _runs_by(runs, OWNER_INDEX))],
    )


def _sinks(mgr: Manager) -> list[Sink]:
    events = mgr.config.events
    sinks: list[Sink] = []
    if events.nats.url:
        sinks.append(NatsSink(events.nats.url, events.nats.subject, jetstream=events.nats.jetstream))
    sinks.extend(HttpSink(url) for url in events.http.sinks)
    for sink in sinks:
        mgr.add_runnable(_Closing(sink), needs_leader=False)
    return sinks


def _runs_by(runs: Informer, index: str):  # noqa: ANN202 (a MapFunc)
    """Maps a RunConfiguration to the Runs that ``index`` relates it to."""

    def map_func(rc: Obj) -> list[ObjectKey]:
        metadata = rc.get("metadata") or {}
        return runs.store.index_keys(index, namespaced_index_value(metadata["namespace"], metadata["name"]))

    return map_func


def _owner_of(run: Obj) -> list[ObjectKey]:
    view = RunView(run)
    owner = view.owning_run_configuration()
    return [ObjectKey(view.namespace, owner)] if owner else []


class _Closing:
    """Closes a sink's connections when the process stops."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._sink.close()
