"""The RunConfiguration reconciler: resolve ``spec.run``, create Runs for its triggers and schedules,
keep its history, and say in status what it is doing.

Read top-down: :meth:`RunConfigurationReconciler.reconcile` reads the RunConfiguration and the
Runs it owns from the cache, checks what can never work (schedules, trigger references, cycles),
resolves ``spec.run`` as a Run would be resolved, then answers the pending trigger causes and the
schedule, trims the history and writes the status. The decisions are the pure functions of
``triggers``, ``schedule``, ``history`` and ``status``; this module does the I/O around them.

Every cause fires exactly once: a created Run's name is derived from its causes and it carries
them in an annotation, so a retry after a crash (before the status recorded them) finds the Run
instead of creating another. ``status.latestRuns`` belongs to the latest-run controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store, namespaced_index_value
from reconcilers.api import RUN_CONFIGURATIONS, RUNS
from reconcilers.api.run import RunView, reference_target
from reconcilers.api.runconfiguration import ON_CHANGE_PIPELINE, RunConfigurationView, latest_succeeded_of
from reconcilers.clients import EventRecorder, KfpError, KubeClient
from reconcilers.expectations import ActedOnVersions
from reconcilers.handover import handover_pending
from reconcilers.indexes import OWNER_INDEX
from reconcilers.kfp_waits import waiting_on_kfp
from reconcilers.run.parameters import RUN_CONFIGURATION_NOT_FOUND
from reconcilers.run.resolve import KfpCatalog, ReferencePolicy, Rejected, Resolved, Waiting, resolve
from reconcilers.run.status import merge_patch
from reconcilers.run_metrics import RunConfigurationMetrics
from reconcilers.runconfiguration import schedule, status
from reconcilers.runconfiguration.history import beyond_history
from reconcilers.runconfiguration.schedule import DOWNTIME, Fire, InvalidSchedule, Skip
from reconcilers.runconfiguration.triggers import (
    SCHEDULE_TRIGGER,
    TRIGGER_TYPE_LABEL,
    Cause,
    build_run,
    change_causes,
    covered,
    schedule_cause,
    trigger_cycle,
    triggered_state,
    why,
)
from reconcilers.timestamps import parse_time

log = structlog.get_logger(__name__)

NORMAL, WARNING = "Normal", "Warning"
INVALID_SCHEDULE = "InvalidSchedule"
TRIGGER_CYCLE = "TriggerCycle"


@dataclass(frozen=True)
class RunConfigurationSettings:
    provider: str
    default_experiment: str
    # How often a RunConfiguration looks for a new pipeline version (onChange: pipeline), or for a
    # missing pipeline, version or experiment, in KFP, which offers no watch.
    recheck_interval: float
    references: ReferencePolicy = field(default_factory=ReferencePolicy)
    # Whether completion events go anywhere: history only deletes Runs whose event was delivered.
    sinks_configured: bool = False


class RunConfigurationReconciler:
    def __init__(
        self,
        *,
        run_configurations: Store,
        runs: Store,
        kube: KubeClient,
        catalog: KfpCatalog,
        recorder: EventRecorder,
        metrics: RunConfigurationMetrics,
        clock: Clock,
        settings: RunConfigurationSettings,
        pipelines: Store | None = None,
        experiments: Store | None = None,
    ) -> None:
        self._run_configurations = run_configurations
        # The Pipeline and Experiment resources spec.run may name (None: none are watched).
        self._pipelines = pipelines
        self._experiments = experiments
        self._runs = runs
        self._kube = kube
        self._catalog = catalog
        self._recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._settings = settings
        self._acted_on = ActedOnVersions(clock)

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self._run_configurations.get(key)
        if obj is None:
            self._acted_on.forget(key)
            return self._delete_orphans(key)
        if self._acted_on.is_stale(key, obj):
            return Result()  # our last write is on its way into the cache, and will re-trigger us
        rc = RunConfigurationView(obj)
        if rc.is_deleting:
            return Result()
        problem = self._problem(rc)
        if problem is not None:
            return self._fail(rc, *problem)
        try:
            resolution = resolve(
                rc.run,
                namespace=rc.namespace,
                run_configurations={
                    ref: self._lookup(rc, ref) for ref in rc.run.referenced_run_configurations()
                },
                catalog=self._catalog,
                default_experiment=self._settings.default_experiment,
                references=self._settings.references,
                pipeline_resource=self._declared(self._pipelines, rc.namespace, rc.run.pipeline.name),
                experiment_resource=self._declared(self._experiments, rc.namespace, rc.run.experiment_name),
                previous_version=rc.status.get("observedPipelineVersion") or None,
            )
        except KfpError as error:
            self._waiting_on_kfp(rc, error)
            raise  # retried with the work queue's backoff
        match resolution:
            case Rejected(reason=reason, message=message):
                return self._fail(rc, reason, message)
            case Waiting():
                return self._wait(rc, resolution)
            case Resolved():
                missing = [r for r in rc.trigger_references if self._lookup(rc, r) is None]
                if missing:
                    return self._wait(rc, _missing_upstream(missing, resolution))
                return self._synchronize(rc, resolution)

    # -- what can never work ---------------------------------------------------------------

    def _problem(self, rc: RunConfigurationView) -> tuple[str, str] | None:
        try:
            schedule.validate(rc.schedules, rc.schedule_policy)
        except InvalidSchedule as error:
            return INVALID_SCHEDULE, str(error)
        for reference in rc.trigger_references:
            problem = self._settings.references.problem(reference, rc.namespace)
            if problem is not None:
                return "RunConfigurationReferenceNotAllowed", f"trigger: {problem}"
        cycle = trigger_cycle((rc.namespace, rc.name), self._upstreams)
        if cycle is not None:
            path = " -> ".join(f"{ns}/{name}" for ns, name in cycle)
            return TRIGGER_CYCLE, f"runConfigurations triggers form a cycle ({path}); no Run is created"
        return None

    def _upstreams(self, rc: tuple[str, str]) -> list[tuple[str, str]]:
        obj = self._run_configurations.get(ObjectKey(*rc))
        if obj is None:
            return []
        return [reference_target(ref, rc[0]) for ref in RunConfigurationView(obj).trigger_references]

    def _fail(self, rc: RunConfigurationView, reason: str, message: str) -> Result:
        previous = rc.condition("Synchronized") or {}
        desired = status.failed(
            rc, provider=self._settings.provider, reason=reason, message=message, now=self._now()
        )
        self._write(rc, desired)
        if previous.get("reason") != reason or previous.get("message") != message:
            self._recorder.event(rc.obj, WARNING, reason, message)
        return Result()  # only a change of the spec (or of what it references) can help

    def _waiting_on_kfp(self, rc: RunConfigurationView, error: KfpError) -> None:
        reason, message = waiting_on_kfp(error)
        previous = rc.condition("Synchronized") or {}
        desired = status.waiting_on_kfp(
            rc, provider=self._settings.provider, reason=reason, message=message, now=self._now()
        )
        self._write(rc, desired)
        if (previous.get("reason"), previous.get("message")) != (reason, message):
            self._recorder.event(rc.obj, WARNING, reason, message)

    def _wait(self, rc: RunConfigurationView, waiting: Waiting) -> Result:
        previous = rc.condition("DependenciesResolved") or {}
        self._write(
            rc, status.waiting(rc, provider=self._settings.provider, waiting=waiting, now=self._now())
        )
        if previous.get("reason") != waiting.reason or previous.get("message") != waiting.message:
            self._recorder.event(
                rc.obj, WARNING, waiting.reason, f"waiting, no Run is created: {waiting.message}"
            )
        if waiting.waits_on_kfp:
            return Result(requeue_after=self._settings.recheck_interval)
        return Result()  # a change to the missing RunConfiguration re-triggers this one

    # -- synchronized: triggers, schedule, history -----------------------------------------

    def _synchronize(self, rc: RunConfigurationView, resolved: Resolved) -> Result:
        now = self._now()
        owned = self._owned_runs(rc)
        version = resolved.version.name
        upstream = {
            ref: str(latest_succeeded_of(self._lookup(rc, ref)).get("providerId") or "")
            for ref in rc.trigger_references
        }
        answered = covered(owned)

        pending = [
            c for c in change_causes(rc, pipeline_version=version, upstream=upstream) if c not in answered
        ]
        if pending:
            self._create_run(rc, pending, version)

        last_schedule = self._schedule(rc, owned, answered, version, now)
        next_schedule = schedule.next_tick(rc.schedules, rc.schedule_policy, max(now, last_schedule or now))

        self._trim_history(rc, owned)

        dependencies = dict(resolved.dependencies)
        for ref, provider_id in upstream.items():
            dependencies.setdefault(ref, {"providerId": provider_id} if provider_id else {})
        self._write(
            rc,
            status.synchronized(
                rc,
                provider=self._settings.provider,
                resolved=resolved,
                dependencies=dependencies,
                triggered=triggered_state(rc, pipeline_version=version, upstream=upstream),
                last_schedule=last_schedule,
                next_schedule=next_schedule,
                now=now,
            ),
        )
        return Result(requeue_after=self._requeue_after(rc, now, next_schedule))

    def _schedule(
        self,
        rc: RunConfigurationView,
        owned: Sequence[RunView],
        answered: set[Cause],
        version: str,
        now: datetime,
    ) -> datetime | None:
        """Answers the schedule's latest unmet tick; returns the tick handled, if any."""
        active = [r for r in owned if _is_scheduled(r) and not r.is_completed and not r.is_deleting]
        decision = schedule.decide(
            rc.schedules,
            rc.schedule_policy,
            now=now,
            last_handled=_time(rc.status.get("lastScheduleTime")),
            created_at=rc.created_at or now,
            active_scheduled_runs=len(active),
        )
        match decision:
            case None:
                return None
            case Fire(tick=tick, missed=missed, replace=replace):
                if missed:
                    self._metrics.schedule_ticks_missed.labels(DOWNTIME).inc(missed)
                if replace:
                    for run in active:
                        self._delete(run, f"replaced by the Run of the tick at {tick.isoformat()}")
                cause = schedule_cause(tick)
                if cause not in answered:
                    self._create_run(rc, [cause], version)
                return tick
            case Skip(tick=tick, reason=reason, message=message, missed=missed):
                self._metrics.schedule_ticks_missed.labels(reason).inc(1 + missed)
                self._recorder.event(rc.obj, NORMAL, "ScheduleSkipped", message)
                return tick

    def _create_run(self, rc: RunConfigurationView, causes: Sequence[Cause], version: str) -> None:
        run = build_run(rc, causes, version)
        name = run["metadata"]["name"]
        if self._kube.create_if_absent(RUNS, run) is None:
            log.info("trigger already answered by an existing Run", run=name)
            return
        trigger = run["metadata"]["labels"][TRIGGER_TYPE_LABEL]
        self._metrics.runs_created.labels(trigger).inc()
        self._recorder.event(rc.obj, NORMAL, "RunCreated", f"created Run {name}: {why(causes)}")
        log.info("created run", run=name, causes=[str(c) for c in causes])

    def _trim_history(self, rc: RunConfigurationView, owned: Sequence[RunView]) -> None:
        def may_go(run: RunView) -> bool:
            return (
                handover_pending(
                    run, sinks_configured=self._settings.sinks_configured, run_configuration=rc.obj
                )
                is None
            )

        doomed = beyond_history(
            owned,
            successful_limit=rc.successful_history_limit,
            failed_limit=rc.failed_history_limit,
            may_go=may_go,
        )
        for run in doomed:
            self._delete(run, "beyond the RunConfiguration's history limit")

    def _delete(self, run: RunView, why: str) -> None:
        if self._kube.delete(
            RUNS, ObjectKey(run.namespace, run.name), uid=run.uid, propagation_policy="Background"
        ):
            self._recorder.event(run.obj, NORMAL, "Deleted", f"deleted: {why}")

    def _requeue_after(
        self, rc: RunConfigurationView, now: datetime, next_schedule: datetime | None
    ) -> float | None:
        waits = []
        if next_schedule is not None:
            waits.append(max((next_schedule - now).total_seconds(), 0.001))
        if ON_CHANGE_PIPELINE in rc.on_change and rc.run.pipeline.version is None:
            waits.append(self._settings.recheck_interval)  # KFP has no watch for new versions
        return min(waits) if waits else None

    # -- orphans: what the garbage collector does where it runs ----------------------------

    def _delete_orphans(self, key: ObjectKey) -> Result:
        """Deletes the Runs a deleted RunConfiguration controlled (its ownerReference says so)."""
        for obj in self._runs.by_index(OWNER_INDEX, namespaced_index_value(*key)):
            run = RunView(obj)
            if not run.is_deleting and _controlled_by(obj, key.name):
                self._delete(run, f"its RunConfiguration {key.name} was deleted")
        return Result()

    # -- reads and writes ------------------------------------------------------------------

    @staticmethod
    def _declared(store: Store | None, namespace: str, name: str | None) -> Mapping[str, Any] | None:
        """The Pipeline or Experiment resource of that name in the namespace, if any."""
        return store.get(ObjectKey(namespace, name)) if store is not None and name else None

    def _lookup(self, rc: RunConfigurationView, reference: str) -> Mapping[str, Any] | None:
        return self._run_configurations.get(ObjectKey(*reference_target(reference, rc.namespace)))

    def _owned_runs(self, rc: RunConfigurationView) -> list[RunView]:
        return [
            RunView(r)
            for r in self._runs.by_index(OWNER_INDEX, namespaced_index_value(rc.namespace, rc.name))
        ]

    def _now(self) -> datetime:
        return self._clock.now()

    def _write(self, rc: RunConfigurationView, desired: Mapping[str, Any]) -> None:
        patch = merge_patch(rc.status, desired)
        if patch:
            key = ObjectKey(rc.namespace, rc.name)
            self._kube.patch_status(RUN_CONFIGURATIONS, key, patch)
            self._acted_on.acted_on(key, rc.obj)


def _missing_upstream(missing: Sequence[str], resolved: Resolved) -> Waiting:
    return Waiting(
        RUN_CONFIGURATION_NOT_FOUND,
        "; ".join(f"trigger: RunConfiguration {ref} does not exist" for ref in missing),
        resolved.dependencies,
        waits_on_kfp=False,
    )


def _is_scheduled(run: RunView) -> bool:
    return run.labels.get(TRIGGER_TYPE_LABEL) == SCHEDULE_TRIGGER


def _controlled_by(obj: Mapping[str, Any], rc_name: str) -> bool:
    return any(
        owner.get("controller")
        and owner.get("kind") == RUN_CONFIGURATIONS.kind
        and owner.get("name") == rc_name
        for owner in (obj.get("metadata") or {}).get("ownerReferences") or ()
    )


def _time(text: Any) -> datetime | None:
    return parse_time(text) if isinstance(text, str) else None
