"""The Run reconciler: resolve, submit exactly once, track, complete; terminate on deletion.

Read top-down: :meth:`RunReconciler.reconcile` reads the Run from the cache and takes the one
step :func:`~reconcilers.run.steps.next_step` says it needs; each step below does the I/O for
that step around pure decisions (``resolve``, ``steps``, ``status``, ``artifacts``). Status is
written as a merge patch of what differs, so a Run that needs nothing costs nothing. What
happens after completion (the RunConfiguration, the TTL, an event a sink did not take) belongs
to other reconcilers, which read what this one records.

The run-completion event goes out with the completion: the sinks are given the event before
the completed status is written, and the status records who acknowledged it, in one write (a
write less per Run than recording it apart). Sinks fail fast, and after a failure the run
controller leaves delivery to the completion-event controller for a while
(:data:`SINK_FAILURE_HOLD`), so a sink that is down does not hold the workers that submit Runs.

Submission, exactly once: the finalizer is added before the first create, conditional on the
version read, so a Run that has it may already have a KFP run, and only such a Run looks for
one by its marker (``tracking``): it adopts what it finds, recording what that run was
submitted with, before resolving anything again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result, TerminalError
from controller.store import Store
from reconcilers.api import FINALIZER, RUNS
from reconcilers.api.run import Artifact, RunView, reference_target
from reconcilers.artifacts.resolve import (
    MetadataReader,
    MetadataUnavailable,
    RunMetadataNotFound,
    Unresolved,
    components_of,
    read_run_metadata,
    resolve_artifacts,
)
from reconcilers.clients import EventRecorder, KfpError, KfpRuns, KubeClient
from reconcilers.completion_event.delivery import Delivery, EventDelivery
from reconcilers.expectations import ActedOnVersions
from reconcilers.handover import handover_pending
from reconcilers.kfp_waits import waiting_on_kfp
from reconcilers.run import status
from reconcilers.run.read_ahead import MetadataReadAhead
from reconcilers.run.resolve import KfpCatalog, ReferencePolicy, Resolution, Resolved, Waiting, resolve
from reconcilers.run.steps import (
    Create,
    Refuse,
    Step,
    Wait,
    decide_submission,
    may_have_kfp_run,
    next_step,
    refusal,
)
from reconcilers.run.submit import create_run_request, what_it_used
from reconcilers.run.tracking import (
    KFP_ACTIVE,
    KfpRunObservation,
    KfpRunTracker,
    find_marked_run,
    observation_from,
)
from reconcilers.run_metrics import RunMetrics
from reconcilers.timestamps import parse_time

log = structlog.get_logger(__name__)

NORMAL, WARNING = "Normal", "Warning"

# After a sink fails to take an event, completions leave their events to the completion-event
# controller (which retries each with backoff) for this long, in seconds.
SINK_FAILURE_HOLD = 30.0


def has_next_step(obj: Mapping[str, Any]) -> bool:
    """The controller's event filter: a Run that needs no step (completed, refused for good, or
    deleted without our finalizer) is not queued, since its reconcile would do nothing. A
    restart then queues the Runs still in flight, not every completed Run in the cache, and a
    new Run does not wait behind them."""
    return next_step(RunView(obj)) is not Step.NONE


@dataclass(frozen=True)
class RunSettings:
    provider: str
    default_experiment: str
    # How often a Run waiting for something in KFP (pipeline, version, experiment) looks again.
    dependency_recheck_interval: float
    # How long a deleted Run is held for what must not be lost (an active KFP run stopped, its
    # completion recorded, its event delivered, its RunConfiguration updated).
    deletion_timeout: timedelta
    # Which RunConfigurations parameters may reference.
    references: ReferencePolicy = field(default_factory=ReferencePolicy)
    # Whether completion events go anywhere: a deleted Run then waits for their delivery.
    sinks_configured: bool = False
    # How often a deleted Run held by its finalizer looks again (besides watch events).
    deletion_recheck_interval: float = 10.0


@dataclass(frozen=True)
class _Held:
    """What a deleted Run's finalizer still holds it for; ``status_written`` if this pass wrote."""

    what: str
    status_written: bool = False


class RunReconciler:
    def __init__(
        self,
        *,
        runs: Store,
        run_configurations: Store,
        kube: KubeClient,
        kfp: KfpRuns,
        catalog: KfpCatalog,
        tracker: KfpRunTracker,
        metadata: MetadataReader,
        recorder: EventRecorder,
        metrics: RunMetrics,
        clock: Clock,
        settings: RunSettings,
        pipelines: Store | None = None,
        experiments: Store | None = None,
        delivery: EventDelivery | None = None,
        read_ahead: MetadataReadAhead | None = None,
    ) -> None:
        self._runs = runs
        # The Pipeline and Experiment resources a Run may name (None: none are watched).
        self._pipelines = pipelines
        self._experiments = experiments
        self._run_configurations = run_configurations
        self._kube = kube
        self._kfp = kfp
        self._catalog = catalog
        self._tracker = tracker
        self._metadata = metadata
        # ML Metadata records the bulk poll read ahead for Runs it found succeeded.
        self._read_ahead = read_ahead
        self._recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._settings = settings
        self._acted_on = ActedOnVersions(clock)
        # Where completion events go along with the completion (None: left to the
        # completion-event controller), and until when not, after a sink failed.
        self._delivery = delivery if delivery is not None and delivery.sinks else None
        self._deliver_later_until = float("-inf")

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self._runs.get(key)
        if obj is None:
            self._acted_on.forget(key)
            return Result()
        if self._acted_on.is_stale(key, obj):
            return Result()  # our last write is on its way into the cache, and will re-trigger us
        run = RunView(obj)
        match next_step(run):
            case Step.FINALIZE:
                return self._finalize(run)
            case Step.SUBMIT:
                return self._submit(run)
            case Step.TRACK:
                return self._track(run)
            case Step.NONE:
                return Result()

    # -- before submission -------------------------------------------------------------------

    def _submit(self, run: RunView) -> Result:
        # A KFP call failing here is said on the Run and retried with the work queue's backoff;
        # the create says its own failures (_create).
        try:
            if may_have_kfp_run(run):
                # An earlier attempt may have created the KFP run: adopt it, as it was
                # submitted, whatever resolving again would give now.
                existing = find_marked_run(self._kfp, run)
                if existing is not None:
                    return self._adopt(run, existing)
            resolution = self._resolve(run)
        except KfpError as error:
            self._kfp_failing(run, error)
            raise
        match decide_submission(resolution):
            case Wait(waiting):
                return self._wait(run, waiting)
            case Refuse(rejected):
                self._write(run, status.rejected(run, rejected, self._clock.now()))
                self._recorder.event(run.obj, WARNING, rejected.reason, rejected.message)
                self._metrics.submissions.labels("rejected").inc()
                raise TerminalError(f"{rejected.reason}: {rejected.message}")
            case Create(resolved):
                return self._create(run, resolved)

    def _resolve(self, run: RunView) -> Resolution:
        return resolve(
            run.spec,
            namespace=run.namespace,
            run_configurations={
                reference: self._run_configurations.get(
                    ObjectKey(*reference_target(reference, run.namespace))
                )
                for reference in run.spec.referenced_run_configurations()
            },
            catalog=self._catalog,
            default_experiment=self._settings.default_experiment,
            references=self._settings.references,
            pipeline_resource=_declared(self._pipelines, run.namespace, run.spec.pipeline.name),
            experiment_resource=_declared(self._experiments, run.namespace, run.spec.experiment_name),
        )

    def _kfp_failing(
        self, run: RunView, error: KfpError, *, superseded: Mapping[str, Any] | None = None
    ) -> None:
        """Says on the Run why it is not submitted yet when KFP fails to answer; once per cause."""
        reason, message = waiting_on_kfp(error)
        previous = run.condition("Synchronized") or {}
        if (previous.get("reason"), previous.get("message")) == (reason, message):
            return
        self._write(
            run, status.kfp_unavailable(run, reason, message, self._clock.now()), superseded=superseded
        )
        self._recorder.event(run.obj, WARNING, reason, message)

    def _adopt(self, run: RunView, kfp_run: Mapping[str, Any]) -> Result:
        reference = kfp_run.get("pipeline_version_reference") or {}
        version = self._catalog.pipeline_version_by_id(
            reference.get("pipeline_id", ""), reference.get("pipeline_version_id", "")
        )
        experiment_name = self._catalog.experiment_name(kfp_run.get("experiment_id", ""))
        used = what_it_used(run.spec, kfp_run, version, experiment_name)
        return self._submitted(run, used, kfp_run, "adopted")

    def _wait(self, run: RunView, waiting: Waiting) -> Result:
        previous = run.condition("DependenciesResolved") or {}
        self._write(run, status.waiting(run, waiting, self._clock.now()))
        if previous.get("reason") != waiting.reason or previous.get("message") != waiting.message:
            self._recorder.event(run.obj, WARNING, waiting.reason, f"waiting: {waiting.message}")
        if waiting.waits_on_kfp:
            return Result(requeue_after=self._settings.dependency_recheck_interval)
        return Result()  # a change to the RunConfiguration re-triggers the Run

    def _create(self, run: RunView, resolved: Resolved) -> Result:
        # The finalizer comes first: once a KFP run may exist, deletion must get a chance to stop
        # it, and the next attempt must look for it. Adding it is conditional on the version
        # read, so a Run that had none cannot have a KFP run: it is created without a lookup.
        with_finalizer = self._kube.add_finalizer(RUNS, run.obj, FINALIZER)
        try:
            kfp_run = self._kfp.create_run(create_run_request(run, resolved))
        except KfpError as error:
            refused = refusal(error)
            if refused is None:
                # No answer or a server error: the next attempt looks for the run by its marker.
                # Saying so on the Run supersedes the finalizer's version too (our own write): a
                # reconcile of that version, still on its way into the cache, would adopt the
                # run a second time.
                self._kfp_failing(run, error, superseded=with_finalizer)
                raise
            self._write(
                run,
                status.submission_failed(run, resolved, error.message, self._clock.now()),
                superseded=with_finalizer,
            )
            self._recorder.event(run.obj, WARNING, refused.reason, refused.message)
            self._metrics.submissions.labels("failed").inc()
            raise TerminalError(refused.message) from None
        return self._submitted(run, resolved, kfp_run, "created", with_finalizer)

    def _submitted(
        self,
        run: RunView,
        resolved: Resolved,
        kfp_run: Mapping[str, Any],
        how: str,
        with_finalizer: Mapping[str, Any] | None = None,
    ) -> Result:
        observation = observation_from(kfp_run)
        self._tracker.record(observation)
        self._write(
            run,
            status.submitted(run, resolved, self._settings.provider, observation, self._clock.now()),
            superseded=with_finalizer,
        )
        self._metrics.submissions.labels(how).inc()
        self._recorder.event(
            run.obj,
            NORMAL,
            "Submitted",
            f"{how} KFP run {observation.run_id} (pipeline {run.spec.pipeline.name} version "
            f"{resolved.version.name}, experiment {resolved.experiment_name})",
        )
        log.info("submitted", kfp_run=observation.run_id, how=how)
        return Result(requeue_after=self._tracker.seconds_until_safety_check(observation.run_id))

    # -- after submission --------------------------------------------------------------------

    def _track(self, run: RunView) -> Result:
        run_id = run.kfp_run_id
        assert run_id is not None
        observation = self._tracker.observation(run_id)
        if observation is None:
            wait = self._tracker.seconds_until_safety_check(run_id)
            if wait > 0:
                return Result(requeue_after=wait)
            kfp_run = self._kfp.get_run(run_id)
            if kfp_run is None:
                return self._vanished(run, run_id)
            observation = observation_from(kfp_run)
            self._tracker.record(observation)
            if not observation.is_terminal:
                self._write(run, status.progressing(run, observation, self._clock.now()))
                return Result(requeue_after=self._tracker.seconds_until_safety_check(run_id))
        return self._complete(run, observation)

    def _complete(self, run: RunView, observation: KfpRunObservation) -> Result:
        artifacts: list[Artifact] = []
        if observation.succeeded and run.spec.artifacts:
            try:
                artifacts, unresolved = self._resolve_artifacts(run, observation.run_id)
            except MetadataUnavailable as error:
                self._waiting_on_metadata(run, observation, error)
                raise  # completion waits, with the work queue's backoff, until they can be read
            for missing in unresolved:
                self._recorder.event(
                    run.obj, WARNING, "ArtifactNotFound", f"artifact {missing.name}: {missing.reason}"
                )
        now = self._clock.now()
        completed = status.completed(run, observation, artifacts, now)
        delivery = self._deliver_event(run, completed)
        self._write(run, completed)
        state = "succeeded" if observation.succeeded else "failed"
        self._metrics.completions.labels(state).inc()
        if observation.finished_at is not None:
            self._metrics.completion_lag.observe(max(0.0, (now - observation.finished_at).total_seconds()))
            if observation.created_at is not None:
                duration = (observation.finished_at - observation.created_at).total_seconds()
                self._metrics.run_duration.labels(state).observe(max(0.0, duration))
        if observation.succeeded:
            self._recorder.event(run.obj, NORMAL, "Succeeded", f"KFP run {observation.run_id} succeeded")
        else:
            self._recorder.event(
                run.obj, WARNING, "Failed", f"KFP run {observation.run_id} ended {observation.state}"
            )
        log.info(
            "completed",
            kfp_run=observation.run_id,
            state=observation.state,
            artifacts=len(artifacts),
            **_delivered(delivery),
        )
        return Result()

    def _deliver_event(self, run: RunView, completed: dict[str, Any]) -> Delivery | None:
        """Hands the Run's completion event to the sinks and records in ``completed`` (the status
        about to be written) who took it; what is left is the completion-event controller's."""
        if self._delivery is None or self._clock.monotonic() < self._deliver_later_until:
            return None
        delivery = self._delivery.deliver(RunView({**run.obj, "status": completed}))
        completed["completionEvent"] = delivery.progress
        if not delivery.complete:
            self._deliver_later_until = self._clock.monotonic() + SINK_FAILURE_HOLD
            log.info(
                "completion event left to the completion-event controller",
                event_id=delivery.event_id,
                failures=delivery.failures,
                hold_seconds=SINK_FAILURE_HOLD,
            )
        return delivery

    def _waiting_on_metadata(
        self, run: RunView, observation: KfpRunObservation, error: MetadataUnavailable
    ) -> None:
        """Says on the Run why its completion waits; once per cause. The message names the call
        and the status code only (the details, which vary, are in the reconcile's log line)."""
        message = (
            f"KFP run {observation.run_id} succeeded; its artifacts wait for ML Metadata "
            f"({error.rpc}: {error.code}); retrying"
        )
        previous = run.condition("Completed") or {}
        self._write(run, status.waiting_on_metadata(run, message, self._clock.now()))
        if (previous.get("reason"), previous.get("message")) != (status.METADATA_UNAVAILABLE, message):
            self._recorder.event(run.obj, WARNING, status.METADATA_UNAVAILABLE, message)

    def _resolve_artifacts(self, run: RunView, run_id: str) -> tuple[list[Artifact], list[Unresolved]]:
        components = components_of(run.spec.artifacts)
        try:
            metadata = self._read_ahead.take(run_id, components) if self._read_ahead else None
            if metadata is None:
                metadata = read_run_metadata(self._metadata, run_id, components)
        except RunMetadataNotFound as error:
            # A finished run without metadata (a v1 pipeline, or a cleaned-up store) will not
            # gain any: complete without artifacts rather than wait forever.
            return [], [Unresolved(a.name, str(error)) for a in run.spec.artifacts]
        return resolve_artifacts(run.spec.artifacts, metadata)

    def _vanished(self, run: RunView, run_id: str) -> Result:
        self._write(run, status.vanished(run, run_id, self._clock.now()))
        self._metrics.completions.labels("failed").inc()
        self._recorder.event(run.obj, WARNING, "RunVanished", f"KFP run {run_id} no longer exists in KFP")
        return Result()

    # -- deletion ----------------------------------------------------------------------------
    #
    # The finalizer holds a deleted Run until nothing is lost with it: an active KFP run is
    # terminated; a KFP run that finished is recorded as the Run's completion; the completion's
    # event reaches every sink and the owning RunConfiguration takes it (both done by their own
    # controllers, which keep working on Runs being deleted). All of it within deletionTimeout,
    # after which the Run is released with a Warning Event saying what was abandoned.

    def _finalize(self, run: RunView) -> Result:
        left = self._deletion_time_left(run)
        try:
            held = self._finalize_step(run)
        except KfpError as error:
            if left > 0:
                raise
            held = _Held(f"the KFP run, which could not be reached ({error.message})")
        except MetadataUnavailable as error:
            if left > 0:
                raise
            held = _Held(f"its artifacts, as ML Metadata could not be read ({error})")
        if held is None:
            self._kube.remove_finalizer(RUNS, run.obj, FINALIZER)
            return Result()
        if left <= 0:
            self._recorder.event(
                run.obj,
                WARNING,
                "DeletionTimedOut",
                f"released after {self._settings.deletion_timeout} without waiting any longer for "
                f"{held.what}",
            )
            self._kube.remove_finalizer(RUNS, run.obj, FINALIZER)
            return Result()
        if not held.status_written:  # else the next pass, on the version just written, does it
            self._write(run, status.deleting(run, held.what, self._clock.now()))
        return Result(requeue_after=min(left, self._settings.deletion_recheck_interval))

    def _finalize_step(self, run: RunView) -> _Held | None:
        """Takes the next step of the deletion; returns what the Run is still held for, or None."""
        if run.is_completed:
            owner = run.owning_run_configuration()
            rc = self._run_configurations.get(ObjectKey(run.namespace, owner)) if owner else None
            pending = handover_pending(
                run, sinks_configured=self._settings.sinks_configured, run_configuration=rc
            )
            return _Held(pending) if pending is not None else None
        run_id = run.kfp_run_id
        if run_id is None:
            # Deleted before its KFP run was recorded: there is one if a create got through.
            marked = find_marked_run(self._kfp, run) if may_have_kfp_run(run) else None
            if marked is None:
                return None
            self._adopt(run, marked)
            return _Held("its KFP run to be recorded", status_written=True)
        observation = self._tracker.observation(run_id)
        if observation is None:
            kfp_run = self._kfp.get_run(run_id)
            if kfp_run is None:
                self._vanished(run, run_id)
                return _Held("its completion to be recorded", status_written=True)
            observation = observation_from(kfp_run)
        if observation.is_terminal:
            self._complete(run, observation)
            return _Held("its completion to be recorded", status_written=True)
        if observation.state in KFP_ACTIVE:
            self._terminate(run, run_id)
        return _Held(f"KFP run {run_id} to stop")

    def _terminate(self, run: RunView, run_id: str) -> None:
        try:
            self._kfp.terminate_run(run_id)
        except KfpError as error:
            if error.status not in (400, 404):  # 400: it finished meanwhile; 404: it is gone
                raise
            return
        self._metrics.kfp_terminations.inc()
        self._recorder.event(
            run.obj, NORMAL, "Terminated", f"terminated KFP run {run_id} because the Run was deleted"
        )

    def _deletion_time_left(self, run: RunView) -> float:
        deleted_at = parse_time(run.metadata.get("deletionTimestamp")) or self._clock.now()
        deadline = deleted_at + self._settings.deletion_timeout
        return (deadline - self._clock.now()).total_seconds()

    # -- writes ------------------------------------------------------------------------------

    def _write(
        self, run: RunView, desired: Mapping[str, Any], *, superseded: Mapping[str, Any] | None = None
    ) -> None:
        """Writes what differs; ``superseded`` is an intermediate version an earlier write made."""
        patch = status.merge_patch(run.status, desired)
        if patch:
            key = ObjectKey(run.namespace, run.name)
            self._kube.patch_status(RUNS, key, patch)
            self._acted_on.acted_on(key, run.obj, superseded)


def _declared(store: Store | None, namespace: str, name: str | None) -> Mapping[str, Any] | None:
    """The Pipeline or Experiment resource of that name in the namespace, if any."""
    return store.get(ObjectKey(namespace, name)) if store is not None and name else None


def _delivered(delivery: Delivery | None) -> dict[str, Any]:
    """The log fields of the event that went out with a completion, when every sink took it:
    the completion's line then says both."""
    if delivery is None or not delivery.complete:
        return {}
    return {"event_id": delivery.event_id, "event_delivered_to": delivery.progress["deliveredTo"]}
