"""The wiring: clients from the configuration, the shared informers, and the operator's controllers.

:func:`add_controllers` is called by ``kfp-operator`` (:mod:`kfp_operator.__main__`) with the
:class:`~controller.manager.Manager` before it starts. It builds the KFP, ML Metadata and sink
clients, asks the manager for the shared Run and RunConfiguration informers, adds the indexes
the reconcilers look things up by, and registers the controllers:

* ``run``: resolution, submission, tracking and completion of each Run (also re-triggered by
  changes of the RunConfigurations its parameters reference, and by the KFP run tracker);
* ``run-completion-event``: delivery of each completed Run's event to the sinks;
* ``runconfiguration``: each RunConfiguration's resolution, triggers, schedules and history;
* ``runconfiguration-latest-run``: each RunConfiguration's latest succeeded run;
* ``run-ttl``: deletion of completed Runs after their TTL;
* ``pipeline``: each Pipeline's versions in KFP (compiled by a Job when built from an image);
* ``experiment``: each Experiment's KFP experiment.

Runs and RunConfigurations that name a Pipeline or an Experiment resource are re-triggered when it
changes (its new version, its readiness).

The Runs not completed yet are listed first (``UNCOMPLETED_RUNS``): the ``run`` and
``run-completion-event`` controllers and the KFP run tracker start, and a leader is ready, once
they are cached, while the completed Runs are listed behind the watch. Those two controllers reconcile a
Run from that Run alone and learn of each completed one as it is cached; the others read a
RunConfiguration's Runs together (its history, its latest succeeded run, what to delete) and
start once every Run is cached.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
import urllib3
from kubernetes.client import ApiException

from controller.informer import Informer
from controller.kube import Kube
from controller.manager import Manager
from controller.ratelimit import ItemExponentialFailureRateLimiter
from controller.runner import Watch
from kfp_operator.clients.kfp import KfpClient, KfpMetrics
from kfp_operator.clients.kfp_catalog import CachedKfpCatalog
from kfp_operator.clients.mlmd import MlmdClient, MlmdMetrics, channel_credentials
from kfp_operator.clients.sinks import HttpSink, NatsSink
from kfp_operator.settings import Config
from reconcilers.api import GROUP, RUN_CONFIGURATIONS, RUNS, UNCOMPLETED_RUNS, VERSION
from reconcilers.api.experiment import EXPERIMENTS
from reconcilers.api.pipeline import PIPELINES
from reconcilers.completion_event.delivery import EventDelivery
from reconcilers.completion_event.reconciler import CompletionEventReconciler, needs_delivery
from reconcilers.experiment.reconciler import ExperimentReconciler, ExperimentSettings
from reconcilers.indexes import (
    EXPERIMENT_INDEX,
    OWNER_INDEX,
    PIPELINE_INDEX,
    REFERENCE_INDEX,
    UPSTREAM_INDEX,
    owner_index,
    owner_of,
    rc_experiment_index,
    rc_pipeline_index,
    reference_index,
    run_experiment_index,
    run_pipeline_index,
    runs_by,
    unsubmitted_runs_by,
    upstream_index,
)
from reconcilers.pipeline.job import CompileSettings
from reconcilers.pipeline.reconciler import PipelineReconciler, PipelineSettings
from reconcilers.run.read_ahead import MetadataReadAhead
from reconcilers.run.reconciler import RunReconciler, RunSettings, has_next_step
from reconcilers.run.resolve import ReferencePolicy
from reconcilers.run.tracking import TRACKED_INDEX, KfpRunTracker, tracked_run_index
from reconcilers.run_metrics import RunCacheCollector, RunConfigurationMetrics, RunMetrics
from reconcilers.runconfiguration.latest_reconciler import LatestRunReconciler
from reconcilers.runconfiguration.reconciler import RunConfigurationReconciler, RunConfigurationSettings
from reconcilers.ttl.reconciler import TtlReconciler, expiry_filter, owned_runs_that_may_expire

log = structlog.get_logger(__name__)

# KFP lookups by name are shared by a burst of Runs for at most this long (and at most half
# the recheck interval, so a waiting Run sees a pipeline uploaded meanwhile at its next recheck).
CATALOG_TTL = 10.0
# A sink that is down is retried at least this often once it is back, however long it was down.
EVENT_RETRY_MAX_DELAY = 30.0


def add_controllers(mgr: Manager, config: Config) -> None:
    registry = mgr.metrics.registry
    run_metrics = RunMetrics(registry)

    runs = mgr.informer(RUNS, prompt_selector=UNCOMPLETED_RUNS)
    run_configurations = mgr.informer(RUN_CONFIGURATIONS)
    runs.add_indexer(TRACKED_INDEX, tracked_run_index)
    runs.add_indexer(OWNER_INDEX, owner_index)
    runs.add_indexer(REFERENCE_INDEX, reference_index)
    run_configurations.add_indexer(UPSTREAM_INDEX, upstream_index)
    pipelines = experiments = None
    unusable = _why_resources_unusable(mgr.kube, config)
    if unusable is None:
        pipelines = mgr.informer(PIPELINES)
        experiments = mgr.informer(EXPERIMENTS)
        runs.add_indexer(PIPELINE_INDEX, run_pipeline_index)
        runs.add_indexer(EXPERIMENT_INDEX, run_experiment_index)
        run_configurations.add_indexer(PIPELINE_INDEX, rc_pipeline_index)
        run_configurations.add_indexer(EXPERIMENT_INDEX, rc_experiment_index)
    else:
        log.error("Pipeline and Experiment resources are not handled", reason=unusable)
    registry.register(RunCacheCollector(runs.list, complete=runs.has_synced))

    kfp = KfpClient(config.kfp, KfpMetrics(registry), pool_size=max(config.workers * 2, 10))
    mlmd = config.mlmd
    metadata = MlmdClient(
        mlmd.host,
        mlmd.port,
        MlmdMetrics(registry),
        credentials=channel_credentials(
            tls=mlmd.tls, ca_file=mlmd.ca_file, cert_file=mlmd.cert_file, key_file=mlmd.key_file
        ),
    )
    sinks = _sinks(mgr, config)
    delivery = EventDelivery(sinks=sinks, metrics=run_metrics, clock=mgr.clock, provider=config.provider)
    catalog = CachedKfpCatalog(kfp, ttl_seconds=min(CATALOG_TTL, config.dependency_recheck_interval / 2))
    references = ReferencePolicy(
        cross_namespace=config.allow_cross_namespace_references,
        watched=frozenset(config.watch_namespaces) or None,
    )

    read_ahead = MetadataReadAhead(metadata, runs.store, mgr.clock)
    tracker = KfpRunTracker(
        kfp,
        runs.store,
        lambda key: run_controller.enqueue(key),
        # Tracked Runs are submitted and not completed: all of them are among the prompt ones.
        runs_synced=runs.prompt_synced,
        clock=mgr.clock,
        poll_interval=config.poll_interval,
        safety_check_interval=config.safety_check_interval,
        on_finished=read_ahead.expect,
    )
    run_controller = mgr.add_controller(
        "run",
        RunReconciler(
            runs=runs.store,
            run_configurations=run_configurations.store,
            kube=mgr.kube,
            kfp=kfp,
            catalog=catalog,
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
                references=references,
                sinks_configured=bool(sinks),
                deletion_recheck_interval=config.poll_interval,
            ),
            pipelines=pipelines.store if pipelines else None,
            experiments=experiments.store if experiments else None,
            delivery=delivery,
            read_ahead=read_ahead,
        ),
        primary=runs,
        complete_cache=False,
        watches=[
            # Waiting Runs resolve again when what they reference changes; deleted Runs are
            # released once their RunConfiguration has taken their completion.
            Watch(run_configurations, runs_by(runs.store, REFERENCE_INDEX)),
            Watch(run_configurations, runs_by(runs.store, OWNER_INDEX)),
            *(
                [
                    Watch(pipelines, unsubmitted_runs_by(runs.store, PIPELINE_INDEX)),
                    Watch(experiments, unsubmitted_runs_by(runs.store, EXPERIMENT_INDEX)),
                ]
                if pipelines and experiments
                else []
            ),
        ],
        predicate=has_next_step,
    )
    mgr.add_runnable(tracker, needs_leader=True)

    mgr.add_controller(
        "run-completion-event",
        CompletionEventReconciler(
            runs=runs.store, delivery=delivery, kube=mgr.kube, recorder=mgr.event_recorder, clock=mgr.clock
        ),
        primary=runs,
        rate_limiter=ItemExponentialFailureRateLimiter(max_delay=EVENT_RETRY_MAX_DELAY),
        predicate=needs_delivery,
        complete_cache=False,
    )

    mgr.add_controller(
        "runconfiguration",
        RunConfigurationReconciler(
            run_configurations=run_configurations.store,
            runs=runs.store,
            kube=mgr.kube,
            catalog=catalog,
            recorder=mgr.event_recorder,
            metrics=RunConfigurationMetrics(registry),
            clock=mgr.clock,
            settings=RunConfigurationSettings(
                provider=config.provider,
                default_experiment=config.default_experiment,
                recheck_interval=config.dependency_recheck_interval,
                references=references,
                sinks_configured=bool(sinks),
            ),
            pipelines=pipelines.store if pipelines else None,
            experiments=experiments.store if experiments else None,
        ),
        primary=run_configurations,
        watches=[
            Watch(runs, owner_of),
            Watch(run_configurations, runs_by(run_configurations.store, UPSTREAM_INDEX)),
            *(
                [
                    Watch(pipelines, runs_by(run_configurations.store, PIPELINE_INDEX)),
                    Watch(experiments, runs_by(run_configurations.store, EXPERIMENT_INDEX)),
                ]
                if pipelines and experiments
                else []
            ),
        ],
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
        watches=[Watch(runs, owner_of)],
    )

    default_ttl = _seconds_or_none(config.run_completion_ttl)
    may_expire = expiry_filter(default_ttl)
    mgr.add_controller(
        "run-ttl",
        TtlReconciler(
            runs=runs.store,
            run_configurations=run_configurations.store,
            kube=mgr.kube,
            recorder=mgr.event_recorder,
            metrics=run_metrics,
            clock=mgr.clock,
            default_ttl=default_ttl,
            sinks_configured=bool(sinks),
        ),
        primary=runs,
        watches=[Watch(run_configurations, owned_runs_that_may_expire(runs.store, may_expire))],
        predicate=may_expire,
    )

    if pipelines and experiments:
        _add_resource_controllers(
            mgr,
            config,
            kfp,
            pipelines=pipelines,
            experiments=experiments,
            runs=runs,
            run_configurations=run_configurations,
        )


def _why_resources_unusable(kube: Kube, config: Config) -> str | None:
    """Why Pipelines and Experiments cannot be watched here, if they cannot.

    Helm installs a chart's CRDs only on the first install, never on upgrades, and an older
    ClusterRole may lack them: rather than wait forever for informers that cannot list, the
    operator then goes on without these two controllers (Runs name pipelines and experiments in
    KFP, as before), and says so. An API server that does not answer now is not a reason.
    """
    try:
        served = kube.request("GET", f"/apis/{GROUP}/{VERSION}").get("resources") or []
        names = {str(r.get("name")) for r in served}
        missing = [r.plural for r in (PIPELINES, EXPERIMENTS) if r.plural not in names]
        if missing:
            return (
                f"the API server does not serve {' and '.join(missing)}.{GROUP}: install the CRDs of "
                f"crds/ (helm upgrade does not install new CRDs)"
            )
        for resource in (PIPELINES, EXPERIMENTS):
            for namespace in config.watch_namespaces or ("",):
                for verb in ("list", "watch"):
                    review = kube.request(
                        "POST",
                        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                        body={
                            "apiVersion": "authorization.k8s.io/v1",
                            "kind": "SelfSubjectAccessReview",
                            "spec": {
                                "resourceAttributes": {
                                    "group": GROUP,
                                    "resource": resource.plural,
                                    "verb": verb,
                                    "namespace": namespace,
                                }
                            },
                        },
                    )
                    if not (review.get("status") or {}).get("allowed"):
                        where = f"namespace {namespace}" if namespace else "all namespaces"
                        return f"the operator may not {verb} {resource.plural}.{GROUP} in {where} (RBAC)"
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
        log.warning("could not check whether Pipelines and Experiments can be watched", error=str(error))
    return None


def _add_resource_controllers(mgr: Manager, config: Config, kfp: KfpClient, **informers: Informer) -> None:
    """The ``pipeline`` and ``experiment`` controllers."""
    deletion_timeout = timedelta(seconds=config.deletion_timeout)
    mgr.add_controller(
        "pipeline",
        PipelineReconciler(
            pipelines=informers["pipelines"].store,
            runs=informers["runs"].store,
            run_configurations=informers["run_configurations"].store,
            kube=mgr.kube,
            kfp=kfp,
            recorder=mgr.event_recorder,
            clock=mgr.clock,
            settings=PipelineSettings(
                provider=config.provider,
                naming=config.kfp_names,
                compile=CompileSettings(
                    image=config.pipelines.compiler_image,
                    service_account=config.pipelines.compiler_service_account,
                    timeout_seconds=config.pipelines.compile_timeout,
                ),
                version_retention=config.pipelines.version_retention,
                recheck_interval=config.dependency_recheck_interval,
                poll_interval=config.poll_interval,
                presence_check_interval=config.safety_check_interval,
                deletion_timeout=deletion_timeout,
            ),
        ),
        primary=informers["pipelines"],
    )
    mgr.add_controller(
        "experiment",
        ExperimentReconciler(
            experiments=informers["experiments"].store,
            kube=mgr.kube,
            kfp=kfp,
            recorder=mgr.event_recorder,
            clock=mgr.clock,
            settings=ExperimentSettings(
                provider=config.provider,
                naming=config.kfp_names,
                recheck_interval=config.dependency_recheck_interval,
                presence_check_interval=config.safety_check_interval,
                deletion_timeout=deletion_timeout,
            ),
        ),
        primary=informers["experiments"],
    )


def _seconds_or_none(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds is not None else None


def _sinks(mgr: Manager, config: Config) -> list[HttpSink | NatsSink]:
    events = config.events
    sinks: list[HttpSink | NatsSink] = []
    if events.nats.url:
        sinks.append(NatsSink(events.nats))
    sinks.extend(HttpSink(sink) for sink in events.http.sinks)
    for sink in sinks:
        mgr.add_runnable(_Closing(sink), needs_leader=False)
    return sinks


class _Closing:
    """Closes a sink's connections when the process stops."""

    def __init__(self, sink: HttpSink | NatsSink) -> None:
        self._sink = sink

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._sink.close()
