"""The Pipeline reconciler: each version of a Pipeline's spec becomes a version of a KFP pipeline.

Read top-down: :meth:`PipelineReconciler.reconcile` works out the version the spec describes and
where its compiled spec comes from (``source``), and stops there when the status says that version
is in KFP already: a converged Pipeline costs no KFP call. Otherwise it makes sure the KFP pipeline
(named by ``kfpNames``) is the operator's, or adoptable, finds the version in KFP if it is there
already (after a crash, say), else gets the compiled spec (inline, from a ConfigMap, or from a
compile Job, polled until it ends) and uploads it as a new version named like the version. Old
versions stay, for the Runs pinned to them, up to ``pipelines.versionRetention``.

A converged Pipeline checks once per ``safetyCheckInterval`` that its KFP pipeline and version are
still there (``reconcilers.presence``): what was deleted by hand is made again, and a Warning Event
``DeletedInKfp`` says so.

Ownership: the KFP pipeline and each version it uploads carry the Pipeline's marker in their
description (``reconcilers.api.kfp_objects``). A KFP pipeline of the same name without it belongs
to someone else: the Pipeline fails with ``PipelineNameConflict`` and nothing is written (unless
the Pipeline has the ``pipelines.kubeflow.org/adopt-existing`` annotation). Deleting the Pipeline
(its finalizer) deletes the versions it uploaded, and the KFP pipeline if it created it and
nothing else is left in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.resource import CONFIGMAPS
from controller.store import Store, namespaced_index_value
from reconcilers.api import FINALIZER
from reconcilers.api.kfp_objects import Owner, kfp_name, owner_of
from reconcilers.api.pipeline import PIPELINES, PipelineView
from reconcilers.api.run import RunView
from reconcilers.api.runconfiguration import RunConfigurationView
from reconcilers.clients import EventRecorder, KfpError, KubeClient
from reconcilers.expectations import ActedOnVersions
from reconcilers.indexes import PIPELINE_INDEX
from reconcilers.kfp_waits import waiting_on_kfp
from reconcilers.pipeline import job as jobs
from reconcilers.pipeline import status
from reconcilers.pipeline.kfp import KfpPipelines, owned_by, versions_beyond_retention
from reconcilers.pipeline.source import (
    CONFIG_MAP_NOT_FOUND,
    INVALID_PIPELINE_SPEC,
    Compiled,
    FromImage,
    Invalid,
    from_compiled,
    from_image,
)
from reconcilers.pipeline.spec import CompiledPipeline, InvalidPipelineSpec, load_compiled
from reconcilers.presence import PresenceChecks
from reconcilers.release import release_after_kfp_cleanup
from reconcilers.run.status import merge_patch
from reconcilers.timestamps import parse_time

log = structlog.get_logger(__name__)

NORMAL, WARNING = "Normal", "Warning"
PIPELINE_NAME_CONFLICT = "PipelineNameConflict"
VERSION_CONFLICT = "VersionConflict"
VERSION_CONTENT_CHANGED = "VersionContentChanged"
COMPILE_TIMED_OUT = "CompileTimedOut"
KIND = "Pipeline"

# Failures that only a change of the spec can mend: the same version is not tried again.
FINAL_REASONS = frozenset(
    {*jobs.COMPILER_REASONS, COMPILE_TIMED_OUT, INVALID_PIPELINE_SPEC, VERSION_CONTENT_CHANGED}
)


@dataclass(frozen=True)
class PipelineSettings:
    provider: str
    naming: str  # kfpNames
    compile: jobs.CompileSettings
    # How many of its versions the operator keeps in KFP per pipeline (0: all).
    version_retention: int
    # How often a Pipeline that waits on something outside the cluster's watch (a ConfigMap, a KFP
    # name taken by someone else) looks again.
    recheck_interval: float
    # How often a running compile Job is looked at.
    poll_interval: float
    # How often a converged Pipeline checks that its KFP pipeline version is still there.
    presence_check_interval: float
    deletion_timeout: timedelta


class PipelineReconciler:
    def __init__(
        self,
        *,
        pipelines: Store,
        runs: Store,
        run_configurations: Store,
        kube: KubeClient,
        kfp: KfpPipelines,
        recorder: EventRecorder,
        clock: Clock,
        settings: PipelineSettings,
    ) -> None:
        self._pipelines = pipelines
        self._runs = runs
        self._run_configurations = run_configurations
        self._kube = kube
        self._kfp = kfp
        self._recorder = recorder
        self._clock = clock
        self._settings = settings
        self._acted_on = ActedOnVersions(clock)
        self._presence = PresenceChecks(clock, settings.presence_check_interval)

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self._pipelines.get(key)
        if obj is None:
            self._acted_on.forget(key)
            self._presence.forget(key)
            return Result()
        if self._acted_on.is_stale(key, obj):
            return Result()  # our last write is on its way into the cache, and will re-trigger us
        pipeline = PipelineView(obj)
        if pipeline.is_deleting:
            return self._finalize(pipeline)
        name = kfp_name(self._settings.naming, pipeline.namespace, pipeline.name)
        recheck = Result(requeue_after=self._settings.recheck_interval)

        source = self._source(pipeline)
        if source is None:
            ref = pipeline.spec.compiled_config_map
            assert ref is not None
            message = f"waiting for key {ref.key} of ConfigMap {ref.name}, which does not exist"
            self._progress(pipeline, None, name, CONFIG_MAP_NOT_FOUND, message, warn=True)
            return recheck
        if isinstance(source, Invalid):
            self._fail(pipeline, None, name, source.reason, source.message)
            return Result()
        version = source.version
        polling = recheck if pipeline.spec.compiled_config_map else Result()
        if self._converged(pipeline, version, name):
            wait = self._presence.wait(key)
            if wait == 0 and self._still_in_kfp(pipeline, version, name):
                self._presence.checked(key)
                wait = self._presence.interval
            if wait > 0:
                return Result(requeue_after=min(wait, polling.requeue_after or wait))
        self._presence.forget(key)
        if self._gave_up(pipeline, version, name):
            return polling
        try:
            synced = self._sync(pipeline, version, name, source)
        except KfpError as error:
            self._progress(pipeline, version, name, *waiting_on_kfp(error), warn=True)
            raise  # retried with the work queue's backoff
        # Back once converged, for the presence checks, even when the status did not change.
        return self._presence.within(synced)

    def _sync(self, pipeline: PipelineView, version: str, name: str, source: FromImage | Compiled) -> Result:
        """Puts ``version`` into the KFP pipeline ``name``: found there already, or compiled if need
        be and uploaded; or refused when the KFP pipeline is someone else's."""
        recheck = Result(requeue_after=self._settings.recheck_interval)
        self._abandon_previous_compile(pipeline, version)
        owner = Owner(KIND, pipeline.namespace, pipeline.name, pipeline.uid)
        # From here on KFP (or a Job) may hold something of this Pipeline: deletion must clean it.
        with_finalizer = self._kube.add_finalizer(PIPELINES, pipeline.obj, FINALIZER)

        kfp_pipeline = self._kfp.get_pipeline_by_name(name, pipeline.namespace)
        if kfp_pipeline is not None and not owned_by(kfp_pipeline, owner) and not pipeline.adopts_existing:
            self._fail(
                pipeline,
                version,
                name,
                PIPELINE_NAME_CONFLICT,
                f"KFP pipeline {name} exists and was not created for this Pipeline "
                f"({_created_by(kfp_pipeline)}); it is left alone. Rename this Pipeline, delete the KFP "
                f"pipeline, or annotate this Pipeline with pipelines.kubeflow.org/adopt-existing=true to "
                f"add versions to it",
                superseded=with_finalizer,
            )
            return recheck
        if kfp_pipeline is not None:
            existing = self._kfp.find_pipeline_version(kfp_pipeline["pipeline_id"], version)
            if existing is not None:
                return self._existing_version(
                    pipeline, version, name, source, kfp_pipeline, existing, owner, with_finalizer
                )

        compiled: CompiledPipeline | Result
        if isinstance(source, Compiled):
            compiled = source.pipeline
        else:
            compiled = self._compile(pipeline, version, name, with_finalizer)
        if isinstance(compiled, Result):
            return compiled
        return self._upload(pipeline, version, name, compiled, kfp_pipeline, owner, with_finalizer)

    # -- the source --------------------------------------------------------------------------

    def _source(self, pipeline: PipelineView) -> FromImage | Compiled | Invalid | None:
        """What the spec asks for; None while its ConfigMap does not exist."""
        spec = pipeline.spec
        if not spec.is_compiled:
            return from_image(spec, compiler_image=self._settings.compile.image)
        if spec.compiled_pipeline_spec is not None:
            return from_compiled(spec, spec.compiled_pipeline_spec, origin="compiled.pipelineSpec")
        ref = spec.compiled_config_map
        assert ref is not None
        config_map = self._kube.get_or_none(CONFIGMAPS, ObjectKey(pipeline.namespace, ref.name))
        if config_map is None:
            return None
        data = config_map.get("data") or {}
        if ref.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            return Invalid(INVALID_PIPELINE_SPEC, f"ConfigMap {ref.name} has no key {ref.key} (keys: {keys})")
        return from_compiled(spec, str(data[ref.key]), origin=f"ConfigMap {ref.name} key {ref.key}")

    def _converged(self, pipeline: PipelineView, version: str, name: str) -> bool:
        return (
            pipeline.is_ready
            and pipeline.version == version
            and pipeline.status.get("kfpName") == name
            and pipeline.has_finalizer
        )

    def _still_in_kfp(self, pipeline: PipelineView, version: str, name: str) -> bool:
        """Whether the KFP pipeline of the status still has this version; says so when not."""
        pipeline_id = pipeline.kfp_id
        assert pipeline_id is not None  # converged
        if self._kfp.get_pipeline(pipeline_id) is not None:
            if self._kfp.find_pipeline_version(pipeline_id, version) is not None:
                return True
            what = f"version {version} of KFP pipeline {name}"
        else:
            what = f"KFP pipeline {name} ({pipeline_id})"
        message = f"{what} was deleted outside the operator; uploading it again"
        self._recorder.event(pipeline.obj, WARNING, "DeletedInKfp", message)
        log.warning("pipeline deleted in KFP", kfp_pipeline=name, version=version)
        return False

    def _gave_up(self, pipeline: PipelineView, version: str, name: str) -> bool:
        """This version failed for a reason only a spec change mends: it is not tried again."""
        synchronized = pipeline.condition("Synchronized") or {}
        return (
            pipeline.state == status.FAILED
            and pipeline.version == version
            and pipeline.status.get("kfpName") == name
            and int(pipeline.status.get("observedGeneration") or 0) == pipeline.generation
            and synchronized.get("reason") in FINAL_REASONS
        )

    # -- a version KFP has already -------------------------------------------------------------

    def _existing_version(
        self,
        pipeline: PipelineView,
        version: str,
        name: str,
        source: FromImage | Compiled,
        kfp_pipeline: Mapping[str, Any],
        existing: Mapping[str, Any],
        owner: Owner,
        superseded: Mapping[str, Any] | None,
    ) -> Result:
        marker = owner_of(existing.get("description"))
        if not owner.owns(marker):
            self._fail(
                pipeline,
                version,
                name,
                VERSION_CONFLICT,
                f"KFP pipeline {name} has a version {version} that was not uploaded for this Pipeline "
                f"({_created_by(existing)}); it is left alone",
                superseded=superseded,
            )
            return Result(requeue_after=self._settings.recheck_interval)
        digest = marker.spec_digest if marker is not None else None
        if isinstance(source, Compiled) and digest and digest != source.pipeline.digest:
            self._fail(
                pipeline,
                version,
                name,
                VERSION_CONTENT_CHANGED,
                f"KFP pipeline {name} has version {version} already, with other content; a KFP "
                f"pipeline version cannot change: give the new content a new compiled.version",
                superseded=superseded,
            )
            return Result()
        return self._done(pipeline, version, name, str(kfp_pipeline["pipeline_id"]), superseded=superseded)

    # -- compiling -----------------------------------------------------------------------------

    def _compile(
        self, pipeline: PipelineView, version: str, name: str, superseded: Mapping[str, Any] | None
    ) -> CompiledPipeline | Result:
        """The compiled spec once the Job has handed it back; a Result while it runs or failed."""
        settings = self._settings.compile
        job_key = ObjectKey(pipeline.namespace, jobs.job_name(pipeline, version))
        job = self._kube.get_or_none(jobs.JOBS, job_key)
        if job is None:
            self._kube.create_if_absent(jobs.JOBS, jobs.compile_job(pipeline, version, name, settings))
            message = f"compiling version {version} in Job {job_key.name}"
            self._recorder.event(pipeline.obj, NORMAL, status.COMPILING, message)
            self._progress(pipeline, version, name, status.COMPILING, message, superseded=superseded)
            return Result(requeue_after=self._settings.poll_interval)

        now = self._clock.now()
        state = jobs.job_state(job)
        if jobs.timed_out(job, state, now, settings.timeout_seconds):
            self._delete_job(job_key)
            self._fail(
                pipeline,
                version,
                name,
                COMPILE_TIMED_OUT,
                f"Job {job_key.name} did not finish within pipelines.compileTimeout "
                f"({settings.timeout_seconds:g}s); it was deleted",
                superseded=superseded,
            )
            return Result()
        if isinstance(state, jobs.Running):
            message = f"compiling version {version} in Job {job_key.name}"
            self._progress(pipeline, version, name, status.COMPILING, message, superseded=superseded)
            created = parse_time((job.get("metadata") or {}).get("creationTimestamp")) or now
            left = settings.timeout_seconds - (now - created).total_seconds()
            return Result(requeue_after=max(0.1, min(self._settings.poll_interval, left + 0.1)))

        config_map_key = ObjectKey(pipeline.namespace, job_key.name)
        output = jobs.read_output(job, self._kube.get_or_none(CONFIGMAPS, config_map_key))
        if state.succeeded and isinstance(output, jobs.CompiledOutput):
            try:
                return load_compiled(output.content)
            except InvalidPipelineSpec as error:
                reason, message = INVALID_PIPELINE_SPEC, f"the compiled pipeline: {error}"
        elif isinstance(output, jobs.CompileError):
            reason, message = output.reason, output.message
        else:
            outcome = "succeeded" if state.succeeded else f"failed ({state.reason}: {state.message})"
            reason = jobs.COMPILE_FAILED
            message = (
                f"Job {job_key.name} {outcome} without handing back a compiled pipeline; see "
                f"`kubectl logs -n {pipeline.namespace} job/{job_key.name}`"
            )
        self._kube.delete(CONFIGMAPS, config_map_key)  # the Job stays a while, for its logs
        self._fail(pipeline, version, name, reason, message, superseded=superseded)
        return Result()

    def _abandon_previous_compile(self, pipeline: PipelineView, version: str) -> None:
        """The spec changed while an earlier version compiled: that Job is of no use any more."""
        previous = pipeline.version
        if previous and previous != version and pipeline.state in (status.CREATING, status.UPDATING):
            self._delete_job(ObjectKey(pipeline.namespace, jobs.job_name(pipeline, previous)))

    def _delete_job(self, key: ObjectKey) -> None:
        # Background: the garbage collector removes its pods (foreground would wait for it).
        self._kube.delete(jobs.JOBS, key, propagation_policy="Background")
        self._kube.delete(CONFIGMAPS, key)

    # -- uploading -----------------------------------------------------------------------------

    def _upload(
        self,
        pipeline: PipelineView,
        version: str,
        name: str,
        compiled: CompiledPipeline,
        kfp_pipeline: Mapping[str, Any] | None,
        owner: Owner,
        with_finalizer: Mapping[str, Any] | None,
    ) -> Result:
        if kfp_pipeline is None:
            kfp_pipeline = self._kfp.create_pipeline(
                name=name,
                description=owner.describe(f"Pipeline {pipeline.namespace}/{pipeline.name}"),
                namespace=pipeline.namespace,
            )
        pipeline_id = str(kfp_pipeline["pipeline_id"])
        version_owner = Owner(KIND, pipeline.namespace, pipeline.name, pipeline.uid, compiled.digest)
        try:
            self._kfp.upload_pipeline_version(
                pipeline_id,
                name=version,
                description=version_owner.describe(
                    f"Pipeline {pipeline.namespace}/{pipeline.name} {version}"
                ),
                content=compiled.content,
            )
        except KfpError as error:
            if not error.is_refusal:
                raise  # no answer, not allowed, or uploaded meanwhile (409): retried with backoff
            self._fail(
                pipeline,
                version,
                name,
                INVALID_PIPELINE_SPEC,
                f"KFP refused version {version}: {error.message}",
                superseded=with_finalizer,
            )
            return Result()
        self._recorder.event(
            pipeline.obj, NORMAL, "Uploaded", f"uploaded version {version} to KFP pipeline {name}"
        )
        log.info("uploaded pipeline version", kfp_pipeline=name, version=version)
        if not pipeline.spec.is_compiled:
            self._delete_job(ObjectKey(pipeline.namespace, jobs.job_name(pipeline, version)))
        self._apply_retention(pipeline, pipeline_id, version, owner)
        return self._done(pipeline, version, name, pipeline_id, superseded=with_finalizer)

    def _apply_retention(self, pipeline: PipelineView, pipeline_id: str, current: str, owner: Owner) -> None:
        keep = self._settings.version_retention
        if keep <= 0:
            return
        versions = list(self._kfp.all_pipeline_versions(pipeline_id))
        doomed = versions_beyond_retention(
            versions, owner=owner, keep=keep, current=current, in_use=self._versions_in_use(pipeline)
        )
        for version in doomed:
            self._kfp.delete_pipeline_version(pipeline_id, str(version["pipeline_version_id"]))
        if doomed:
            names = ", ".join(str(v.get("name")) for v in doomed)
            self._recorder.event(
                pipeline.obj,
                NORMAL,
                "VersionsDeleted",
                f"deleted versions beyond pipelines.versionRetention ({keep}): {names}",
            )

    def _versions_in_use(self, pipeline: PipelineView) -> set[str]:
        """Versions of this pipeline that a Run not completed yet or a RunConfiguration uses."""
        in_use: set[str] = set()
        value = namespaced_index_value(pipeline.namespace, pipeline.name)
        for obj in self._runs.by_index(PIPELINE_INDEX, value):
            run = RunView(obj)
            if not run.is_completed:
                used = run.spec.pipeline.version or run.status.get("observedPipelineVersion")
                if used:
                    in_use.add(str(used))
        for obj in self._run_configurations.by_index(PIPELINE_INDEX, value):
            rc = RunConfigurationView(obj)
            used = rc.run.pipeline.version or rc.status.get("observedPipelineVersion")
            if used:
                in_use.add(str(used))
        return in_use

    # -- deletion ------------------------------------------------------------------------------

    def _finalize(self, pipeline: PipelineView) -> Result:
        if not pipeline.has_finalizer:
            return Result()
        return release_after_kfp_cleanup(
            pipeline.obj,
            clean_up=lambda: self._remove_from_kfp(pipeline),
            report=lambda message: self._write(
                pipeline, status.deleting(pipeline, message=message, now=self._clock.now())
            ),
            release=lambda: self._kube.remove_finalizer(PIPELINES, pipeline.obj, FINALIZER),
            left_behind="its versions from KFP",
            recorder=self._recorder,
            clock=self._clock,
            timeout=self._settings.deletion_timeout,
        )

    def _remove_from_kfp(self, pipeline: PipelineView) -> None:
        """Deletes the versions it uploaded, and the KFP pipeline if it created it and nothing is left."""
        if pipeline.version:
            self._delete_job(ObjectKey(pipeline.namespace, jobs.job_name(pipeline, pipeline.version)))
        owner = Owner(KIND, pipeline.namespace, pipeline.name, pipeline.uid)
        pipeline_id = pipeline.kfp_id
        if pipeline_id is not None:
            kfp_pipeline = self._kfp.get_pipeline(pipeline_id)
        else:
            name = str(pipeline.status.get("kfpName") or "") or kfp_name(
                self._settings.naming, pipeline.namespace, pipeline.name
            )
            kfp_pipeline = self._kfp.get_pipeline_by_name(name, pipeline.namespace)
        if kfp_pipeline is None:
            return
        ours = owned_by(kfp_pipeline, owner)
        if not ours and not pipeline.adopts_existing:
            return  # someone else's pipeline: nothing in it is ours unless we were asked to adopt it
        pipeline_id = str(kfp_pipeline["pipeline_id"])
        name = str(kfp_pipeline.get("name") or kfp_pipeline.get("display_name") or pipeline_id)
        versions = list(self._kfp.all_pipeline_versions(pipeline_id))
        mine = [v for v in versions if owned_by(v, owner)]
        for version in mine:
            self._kfp.delete_pipeline_version(pipeline_id, str(version["pipeline_version_id"]))
        others = len(versions) - len(mine)
        if ours and others == 0:
            self._kfp.delete_pipeline(pipeline_id)
            self._recorder.event(
                pipeline.obj,
                NORMAL,
                "DeletedFromKfp",
                f"deleted KFP pipeline {name} and its {len(mine)} version(s)",
            )
        elif ours:
            self._recorder.event(
                pipeline.obj,
                WARNING,
                "KfpPipelineKept",
                f"deleted its {len(mine)} version(s); kept KFP pipeline {name}, which has {others} "
                f"version(s) the operator did not upload",
            )
        else:
            self._recorder.event(
                pipeline.obj,
                NORMAL,
                "DeletedFromKfp",
                f"deleted its {len(mine)} version(s) from the adopted KFP pipeline {name}, which stays",
            )

    # -- status --------------------------------------------------------------------------------

    def _done(
        self,
        pipeline: PipelineView,
        version: str,
        name: str,
        pipeline_id: str,
        *,
        superseded: Mapping[str, Any] | None = None,
    ) -> Result:
        desired = status.succeeded(
            pipeline,
            version=version,
            kfp_name=name,
            pipeline_id=pipeline_id,
            provider=self._settings.provider,
            now=self._clock.now(),
        )
        self._write(pipeline, desired, superseded=superseded)
        if pipeline.spec.compiled_config_map is not None:
            return Result(requeue_after=self._settings.recheck_interval)
        return Result()

    def _progress(
        self,
        pipeline: PipelineView,
        version: str | None,
        name: str,
        reason: str,
        message: str,
        *,
        warn: bool = False,
        superseded: Mapping[str, Any] | None = None,
    ) -> None:
        previous = pipeline.condition("Synchronized") or {}
        desired = status.progressing(
            pipeline, version=version, kfp_name=name, reason=reason, message=message, now=self._clock.now()
        )
        self._write(pipeline, desired, superseded=superseded)
        if warn and (previous.get("reason"), previous.get("message")) != (reason, message):
            self._recorder.event(pipeline.obj, WARNING, reason, message)

    def _fail(
        self,
        pipeline: PipelineView,
        version: str | None,
        name: str,
        reason: str,
        message: str,
        *,
        superseded: Mapping[str, Any] | None = None,
    ) -> None:
        previous = pipeline.condition("Synchronized") or {}
        desired = status.failed(
            pipeline, version=version, kfp_name=name, reason=reason, message=message, now=self._clock.now()
        )
        self._write(pipeline, desired, superseded=superseded)
        if (previous.get("reason"), previous.get("message")) != (reason, message):
            self._recorder.event(pipeline.obj, WARNING, reason, message)
            log.info("pipeline failed", reason=reason, message=message)

    def _write(
        self,
        pipeline: PipelineView,
        desired: Mapping[str, Any],
        *,
        superseded: Mapping[str, Any] | None = None,
    ) -> None:
        patch = merge_patch(pipeline.status, desired)
        if patch:
            key = ObjectKey(pipeline.namespace, pipeline.name)
            self._kube.patch_status(PIPELINES, key, patch)
            self._acted_on.acted_on(key, pipeline.obj, superseded)


def _created_by(obj: Mapping[str, Any]) -> str:
    owner = owner_of(obj.get("description"))
    return f"it belongs to {owner}" if owner is not None else "not by kfp-operator"
