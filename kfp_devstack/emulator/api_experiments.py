"""ExperimentService: create, get, list, archive, unarchive, delete (docs/emulator.md §4.3)."""

from __future__ import annotations

import uuid
from typing import Any

from kfp_devstack.emulator import errors
from kfp_devstack.emulator.errors import ApiError
from kfp_devstack.emulator.listing import EXPERIMENTS, parse_list_request, run_list
from kfp_devstack.emulator.models import Experiment, StorageState
from kfp_devstack.emulator.rendering import render_experiment, render_list
from kfp_devstack.emulator.request_decoding import EXPERIMENT, decode_body
from kfp_devstack.emulator.store import Store
from kfp_devstack.emulator.tenancy import Tenancy
from kfp_devstack.emulator.timestamps import now_seconds

DEFAULT_EXPERIMENT_NAME = "Default"
DEFAULT_EXPERIMENT_DESCRIPTION = "All runs created without specifying an experiment will be grouped here."
_DEFAULT_EXPERIMENT_SETTING = "default_experiment_id"


class ExperimentService:
    def __init__(self, store: Store, tenancy: Tenancy) -> None:
        self._store = store
        self._tenancy = tenancy
        if not tenancy.multi_user:
            self._ensure_default_experiment()

    def _ensure_default_experiment(self) -> None:
        with self._store.lock:
            if _DEFAULT_EXPERIMENT_SETTING in self._store.settings:
                return
            experiment = Experiment(
                experiment_id=str(uuid.uuid4()),
                display_name=DEFAULT_EXPERIMENT_NAME,
                description=DEFAULT_EXPERIMENT_DESCRIPTION,
                namespace="",
                created_at=now_seconds(),
            )
            self._store.save_experiment(experiment)
            self._store.save_setting(_DEFAULT_EXPERIMENT_SETTING, experiment.experiment_id)

    @property
    def default_experiment_id(self) -> str | None:
        with self._store.lock:
            return self._store.settings.get(_DEFAULT_EXPERIMENT_SETTING)

    def create(self, raw_body: bytes) -> dict[str, Any]:
        body = decode_body(EXPERIMENT, raw_body)
        try:
            experiment = self._create(body)
        except ApiError as err:
            raise err.wrap("Failed to create an experiment") from None
        return render_experiment(experiment)

    def _create(self, body: dict[str, Any]) -> Experiment:
        name = body.get("display_name", "")
        if not name:
            # The server wraps this validation failure as an internal error (docs/emulator.md §4.3).
            raise errors.internal("Failed to convert API experiment to model", "Experiment must have a name")
        namespace = self._tenancy.namespace(body.get("namespace", ""))
        if self._tenancy.multi_user and not namespace:
            raise errors.invalid_input("Experiment namespace cannot be empty in multi-user mode")
        with self._store.lock:
            if any(
                e.display_name == name and e.namespace == namespace for e in self._store.experiments.values()
            ):
                raise errors.already_exists(
                    f"Failed to create a new experiment. The name {name} already exists. "
                    "Please specify a new name"
                )
            experiment = Experiment(
                experiment_id=str(uuid.uuid4()),
                display_name=name,
                description=body.get("description", ""),
                namespace=namespace,
                created_at=now_seconds(),
            )
            self._store.save_experiment(experiment)
        return experiment

    def fetch(self, experiment_id: str) -> Experiment:
        with self._store.lock:
            experiment = self._store.experiments.get(experiment_id)
        if experiment is None:
            raise errors.not_found("Experiment", experiment_id).wrap(
                f"Failed to fetch experiment {experiment_id}"
            )
        return experiment

    def get(self, experiment_id: str) -> dict[str, Any]:
        try:
            return render_experiment(self.fetch(experiment_id))
        except ApiError as err:
            raise err.wrap("Failed to get an experiment") from None

    def list(
        self, *, page_token: str, page_size: int, sort_by: str, filter_text: str, namespace: str
    ) -> dict[str, Any]:
        query = parse_list_request(
            EXPERIMENTS, page_token=page_token, page_size=page_size, sort_by=sort_by, filter_text=filter_text
        )
        namespace = self._tenancy.namespace(namespace)
        if self._tenancy.multi_user and not namespace:
            raise errors.invalid_input("ListExperiments must filter by namespace in multi-user mode").wrap(
                "Failed to list experiments"
            )
        with self._store.lock:
            candidates = [e for e in self._store.experiments.values() if e.namespace == namespace]
            result = run_list(query, candidates)
            rendered = [render_experiment(experiment) for experiment in result.items]
        return render_list("experiments", rendered, result.total_size, result.next_page_token)

    def archive(self, experiment_id: str) -> dict[str, Any]:
        """Archives the experiment and every run in it, as the server does."""
        with self._store.lock:
            try:
                experiment = self.fetch(experiment_id)
            except ApiError as err:
                raise err.wrap("Failed to archive an experiment") from None
            experiment.storage_state = StorageState.ARCHIVED
            self._store.save_experiment(experiment)
            for run in list(self._store.runs.values()):
                if run.experiment_id == experiment_id and run.storage_state != StorageState.ARCHIVED:
                    run.storage_state = StorageState.ARCHIVED
                    self._store.save_run(run)
        return {}

    def unarchive(self, experiment_id: str) -> dict[str, Any]:
        """Unarchives only the experiment; its runs stay archived."""
        with self._store.lock:
            try:
                experiment = self.fetch(experiment_id)
            except ApiError as err:
                raise err.wrap("Failed to unarchive an experiment") from None
            experiment.storage_state = StorageState.AVAILABLE
            self._store.save_experiment(experiment)
        return {}

    def delete(self, experiment_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                self.fetch(experiment_id)
            except ApiError as err:
                raise err.wrap("Failed to delete an experiment") from None
            self._store.delete_experiment(experiment_id)
        return {}

    def record_run_created(self, experiment: Experiment, created_at: int) -> None:
        with self._store.lock:
            experiment.last_run_created_at = created_at
            self._store.save_experiment(experiment)
