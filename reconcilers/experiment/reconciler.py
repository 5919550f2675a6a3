"""The Experiment reconciler: an Experiment resource becomes a KFP experiment, and goes with it.

Read top-down. A converged Experiment (its status says the KFP experiment exists for this spec)
costs nothing. Otherwise the KFP experiment of its name (``kfpNames``) is looked up by display
name: created when missing (description: ``spec.description`` and the operator's marker), taken
when it carries this Experiment's marker, refused (``ExperimentNameConflict``) when someone else
made it, unless the Experiment has the ``pipelines.kubeflow.org/adopt-existing`` annotation.

**Description changes.** KFP cannot update an experiment. A new description is applied by
recreating the experiment while it has no runs; once it has runs the experiment is kept as it is
(recreating it would move later runs away from the earlier ones), and the ``Synchronized``
condition says so with the reason ``DescriptionNotUpdated`` (a Warning Event too).

**Deleted behind its back.** A converged Experiment checks once per ``safetyCheckInterval`` that
its KFP experiment is still there (``reconcilers.presence``); one deleted by hand is made again
(a Warning Event ``DeletedInKfp`` says so), one archived by hand is unarchived.

**Deletion** (the finalizer): an experiment the operator created is deleted if it has no runs,
archived otherwise (its runs stay visible, archived with it); also archived when KFP refuses the
deletion. An adopted experiment is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store
from reconcilers.api import FINALIZER
from reconcilers.api.experiment import EXPERIMENTS, ExperimentView, experiment_version
from reconcilers.api.kfp_objects import Owner, kfp_name, owner_of, user_description
from reconcilers.clients import EventRecorder, KfpError, KubeClient
from reconcilers.expectations import ActedOnVersions
from reconcilers.experiment import status
from reconcilers.kfp_waits import waiting_on_kfp
from reconcilers.presence import PresenceChecks
from reconcilers.release import release_after_kfp_cleanup
from reconcilers.run.status import merge_patch

log = structlog.get_logger(__name__)

NORMAL, WARNING = "Normal", "Warning"
EXPERIMENT_NAME_CONFLICT = "ExperimentNameConflict"
KIND = "Experiment"


class KfpExperiments(Protocol):
    """KFP's experiment API (``kfp_operator.clients.kfp.KfpClient``); every call raises ``KfpError``."""

    def find_experiment(self, display_name: str, namespace: str) -> dict[str, Any] | None: ...

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None: ...

    def create_experiment(self, *, display_name: str, description: str, namespace: str) -> dict[str, Any]: ...

    def delete_experiment(self, experiment_id: str) -> None: ...

    def archive_experiment(self, experiment_id: str) -> None: ...

    def unarchive_experiment(self, experiment_id: str) -> None: ...

    def experiment_has_runs(self, experiment_id: str) -> bool: ...


@dataclass(frozen=True)
class ExperimentSettings:
    provider: str
    naming: str  # kfpNames
    # How often an Experiment whose KFP name someone else took looks again.
    recheck_interval: float
    # How often a converged Experiment checks that its KFP experiment is still there.
    presence_check_interval: float
    deletion_timeout: timedelta


class ExperimentReconciler:
    def __init__(
        self,
        *,
        experiments: Store,
        kube: KubeClient,
        kfp: KfpExperiments,
        recorder: EventRecorder,
        clock: Clock,
        settings: ExperimentSettings,
    ) -> None:
        self._experiments = experiments
        self._kube = kube
        self._kfp = kfp
        self._recorder = recorder
        self._clock = clock
        self._settings = settings
        self._acted_on = ActedOnVersions(clock)
        self._presence = PresenceChecks(clock, settings.presence_check_interval)

    def reconcile(self, key: ObjectKey) -> Result:
        obj = self._experiments.get(key)
        if obj is None:
            self._acted_on.forget(key)
            self._presence.forget(key)
            return Result()
        if self._acted_on.is_stale(key, obj):
            return Result()
        experiment = ExperimentView(obj)
        if experiment.is_deleting:
            return self._finalize(experiment)
        name = kfp_name(self._settings.naming, experiment.namespace, experiment.name)
        version = experiment_version(experiment.description)
        if self._converged(experiment, version, name):
            wait = self._presence.wait(key)
            if wait > 0:
                return Result(requeue_after=wait)
            if self._still_in_kfp(experiment, name):
                self._presence.checked(key)
                return Result(requeue_after=self._presence.interval)
        self._presence.forget(key)
        try:
            synced = self._sync(experiment, version, name)
        except KfpError as error:
            self._waiting_on_kfp(experiment, error)
            raise  # retried with the work queue's backoff
        # Back once converged, for the presence checks, even when the status did not change.
        return self._presence.within(synced)

    def _sync(self, experiment: ExperimentView, version: str, name: str) -> Result:
        """Makes the KFP experiment match the Experiment: created, taken, adopted, unarchived or
        recreated with a new description; or refused when someone else's."""
        owner = Owner(KIND, experiment.namespace, experiment.name, experiment.uid)
        with_finalizer = self._kube.add_finalizer(EXPERIMENTS, experiment.obj, FINALIZER)
        write = _Writer(self, experiment, version, name, with_finalizer)

        existing = self._kfp.find_experiment(name, experiment.namespace)
        if existing is None:
            created = self._create(experiment, name, owner)
            return write.succeeded(created)
        if not owner.owns(owner_of(existing.get("description"))):
            if experiment.adopts_existing:
                return write.succeeded(
                    existing,
                    message=f"adopted the existing KFP experiment {name} (its description is not changed, "
                    "and it is never deleted by the operator)",
                )
            write.failed(
                EXPERIMENT_NAME_CONFLICT,
                f"KFP experiment {name} exists and was not created for this Experiment; it is left alone. "
                f"Rename this Experiment, or annotate it with pipelines.kubeflow.org/adopt-existing=true to "
                f"use that experiment",
            )
            return Result(requeue_after=self._settings.recheck_interval)
        experiment_id = str(existing["experiment_id"])
        if existing.get("storage_state") == "ARCHIVED":
            self._kfp.unarchive_experiment(experiment_id)
            self._recorder.event(experiment.obj, NORMAL, "Unarchived", f"unarchived KFP experiment {name}")
        if user_description(existing.get("description")) == experiment.description:
            return write.succeeded(existing)
        # KFP cannot update an experiment: a new description means a new experiment, if that loses nothing.
        if self._kfp.experiment_has_runs(experiment_id):
            message = (
                f"KFP experiment {name} keeps its description: KFP cannot change an experiment, and this "
                f"one has runs, which recreating it would separate from later runs"
            )
            return write.succeeded(
                existing, reason=status.DESCRIPTION_NOT_UPDATED, message=message, warn=True
            )
        self._kfp.delete_experiment(experiment_id)
        created = self._create(experiment, name, owner, recreated=True)
        return write.succeeded(created)

    def _converged(self, experiment: ExperimentView, version: str, name: str) -> bool:
        return (
            experiment.is_ready
            and experiment.status.get("version") == version
            and experiment.status.get("kfpName") == name
            and int(experiment.status.get("observedGeneration") or 0) == experiment.generation
            and experiment.has_finalizer
        )

    def _still_in_kfp(self, experiment: ExperimentView, name: str) -> bool:
        """Whether the KFP experiment of the status is there and active; says so when it was deleted."""
        experiment_id = experiment.kfp_id
        assert experiment_id is not None  # converged
        found = self._kfp.get_experiment(experiment_id)
        if found is None:
            message = (
                f"KFP experiment {name} ({experiment_id}) was deleted outside the operator; making it again"
            )
            self._recorder.event(experiment.obj, WARNING, "DeletedInKfp", message)
            log.warning("experiment deleted in KFP", kfp_experiment=name, experiment_id=experiment_id)
            return False
        return found.get("storage_state") != "ARCHIVED"

    def _create(
        self, experiment: ExperimentView, name: str, owner: Owner, *, recreated: bool = False
    ) -> dict[str, Any]:
        created = self._kfp.create_experiment(
            display_name=name,
            description=owner.describe(experiment.description),
            namespace=experiment.namespace,
        )
        what = f"recreated KFP experiment {name} with the new description" if recreated else None
        self._recorder.event(experiment.obj, NORMAL, "Created", what or f"created KFP experiment {name}")
        log.info("created experiment", kfp_experiment=name, recreated=recreated)
        return created

    # -- deletion ------------------------------------------------------------------------------

    def _finalize(self, experiment: ExperimentView) -> Result:
        if not experiment.has_finalizer:
            return Result()
        return release_after_kfp_cleanup(
            experiment.obj,
            clean_up=lambda: self._remove_from_kfp(experiment),
            report=lambda message: self._write(
                experiment, status.deleting(experiment, message=message, now=self._clock.now())
            ),
            release=lambda: self._kube.remove_finalizer(EXPERIMENTS, experiment.obj, FINALIZER),
            left_behind="its KFP experiment",
            recorder=self._recorder,
            clock=self._clock,
            timeout=self._settings.deletion_timeout,
        )

    def _remove_from_kfp(self, experiment: ExperimentView) -> None:
        owner = Owner(KIND, experiment.namespace, experiment.name, experiment.uid)
        experiment_id = experiment.kfp_id
        if experiment_id is not None:
            found = self._kfp.get_experiment(experiment_id)
        else:
            name = str(experiment.status.get("kfpName") or "") or kfp_name(
                self._settings.naming, experiment.namespace, experiment.name
            )
            found = self._kfp.find_experiment(name, experiment.namespace)
        if found is None or not owner.owns(owner_of(found.get("description"))):
            return  # gone already, or not ours (adopted): left alone
        experiment_id = str(found["experiment_id"])
        name = str(found.get("display_name") or experiment_id)
        if self._kfp.experiment_has_runs(experiment_id):
            self._archive(experiment, found, "it has runs, which stay in KFP's history")
            return
        try:
            self._kfp.delete_experiment(experiment_id)
        except KfpError as error:
            if error.status == 404:
                return
            if not error.is_refusal:
                raise
            self._archive(experiment, found, f"KFP refused to delete it ({error.message})")
            return
        self._recorder.event(experiment.obj, NORMAL, "DeletedFromKfp", f"deleted KFP experiment {name}")

    def _archive(self, experiment: ExperimentView, found: Mapping[str, Any], why: str) -> None:
        name = found.get("display_name")
        if found.get("storage_state") != "ARCHIVED":
            self._kfp.archive_experiment(str(found["experiment_id"]))
        self._recorder.event(experiment.obj, NORMAL, "Archived", f"archived KFP experiment {name}: {why}")

    # -- status --------------------------------------------------------------------------------

    def _waiting_on_kfp(self, experiment: ExperimentView, error: KfpError) -> None:
        """Says on the Experiment why it is not synchronized yet; an Event once per cause."""
        reason, message = waiting_on_kfp(error)
        previous = experiment.condition("Synchronized") or {}
        self._write(
            experiment,
            status.waiting_on_kfp(experiment, reason=reason, message=message, now=self._clock.now()),
        )
        if (previous.get("reason"), previous.get("message")) != (reason, message):
            self._recorder.event(experiment.obj, WARNING, reason, message)

    def _write(
        self,
        experiment: ExperimentView,
        desired: Mapping[str, Any],
        *,
        superseded: Mapping[str, Any] | None = None,
    ) -> None:
        patch = merge_patch(experiment.status, desired)
        if patch:
            key = ObjectKey(experiment.namespace, experiment.name)
            self._kube.patch_status(EXPERIMENTS, key, patch)
            self._acted_on.acted_on(key, experiment.obj, superseded)


class _Writer:
    """Writes one reconcile's outcome (and its Event, when the reason or message changes)."""

    def __init__(
        self,
        reconciler: ExperimentReconciler,
        experiment: ExperimentView,
        version: str,
        name: str,
        superseded: Mapping[str, Any] | None,
    ) -> None:
        self._r = reconciler
        self._experiment = experiment
        self._version = version
        self._name = name
        self._superseded = superseded
        self._previous = experiment.condition("Synchronized") or {}

    def succeeded(
        self,
        kfp_experiment: Mapping[str, Any],
        *,
        reason: str = status.SUCCEEDED,
        message: str = "",
        warn: bool = False,
    ) -> Result:
        desired = status.succeeded(
            self._experiment,
            version=self._version,
            kfp_name=self._name,
            experiment_id=str(kfp_experiment["experiment_id"]),
            provider=self._r._settings.provider,
            now=self._r._clock.now(),
            reason=reason,
            message=message,
        )
        self._r._write(self._experiment, desired, superseded=self._superseded)
        if warn and self._changed(reason, message):
            self._r._recorder.event(self._experiment.obj, WARNING, reason, message)
        return Result()

    def failed(self, reason: str, message: str) -> None:
        desired = status.failed(
            self._experiment,
            version=self._version,
            kfp_name=self._name,
            reason=reason,
            message=message,
            now=self._r._clock.now(),
        )
        self._r._write(self._experiment, desired, superseded=self._superseded)
        if self._changed(reason, message):
            self._r._recorder.event(self._experiment.obj, WARNING, reason, message)

    def _changed(self, reason: str, message: str) -> bool:
        return (self._previous.get("reason"), self._previous.get("message")) != (reason, message)
