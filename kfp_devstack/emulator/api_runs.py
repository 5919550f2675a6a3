"""RunService: create, get, list, terminate, archive, unarchive, delete, retry.

CreateRun checks in the server's order (docs/emulator.md §4.4): a missing display name
is a 500 (the server wraps it as internal), a missing experiment in multi-user mode a
400, an unknown experiment a 404, an unknown or mismatched pipeline or version, or no
usable pipeline source at all, a 500 (the template fetch wraps everything as internal;
the deprecated top-level ``pipeline_version_id`` is ignored), and parameters that do
not fit the spec a 400. A client-sent ``run_id`` is honoured, as the server does
(docs/emulator.md §4.4); a duplicate is a 500.
"""

from __future__ import annotations

import uuid
from typing import Any

from kfp_devstack.emulator import errors
from kfp_devstack.emulator.api_experiments import ExperimentService
from kfp_devstack.emulator.api_pipelines import PipelineService
from kfp_devstack.emulator.errors import ApiError
from kfp_devstack.emulator.listing import RUNS, parse_list_request, run_list
from kfp_devstack.emulator.models import (
    TERMINABLE_STATES,
    Experiment,
    Run,
    RunState,
    StateChange,
    StorageState,
)
from kfp_devstack.emulator.pipeline_spec import ParameterError, PipelineSpec, PipelineSpecError
from kfp_devstack.emulator.progression import RunEngine
from kfp_devstack.emulator.rendering import render_list, render_run
from kfp_devstack.emulator.request_decoding import RUN, decode_body
from kfp_devstack.emulator.scenario_book import ScenarioBook
from kfp_devstack.emulator.store import Store
from kfp_devstack.emulator.tenancy import Tenancy
from kfp_devstack.emulator.timestamps import now_seconds

_CREATE_FAILED = "Failed to create a new run"


class RunService:
    def __init__(
        self,
        store: Store,
        tenancy: Tenancy,
        experiments: ExperimentService,
        pipelines: PipelineService,
        engine: RunEngine,
        scenarios: ScenarioBook,
    ) -> None:
        self._store = store
        self._tenancy = tenancy
        self._experiments = experiments
        self._pipelines = pipelines
        self._engine = engine
        self._scenarios = scenarios

    # --- create --------------------------------------------------------------------------------

    def create(self, raw_body: bytes) -> dict[str, Any]:
        body = decode_body(RUN, raw_body)
        if body.get("plugins_output"):  # an empty map is no value in proto: it passes
            raise errors.bad_request(
                "plugins_output is server-owned and populated exclusively via plugin lifecycle hooks",
                "plugins_output must not be set by the client",
            )
        try:
            run, spec = self._create(body)
        except ApiError as err:
            raise err.wrap(_CREATE_FAILED) from None
        self._engine.track(run)
        return render_run(run, spec)

    def _create(self, body: dict[str, Any]) -> tuple[Run, PipelineSpec]:
        if not body.get("display_name"):
            raise errors.internal("Failed to convert a API run to model run", "The run name is empty")
        experiment = self._experiment_for(body.get("experiment_id", ""))
        source = self._pipeline_source(body)
        spec, pipeline_name, pipeline_id, version_id = source
        runtime_config = body.get("runtime_config", {})
        parameters = dict(runtime_config.get("parameters", {}))
        try:
            spec.validate_parameters(parameters)
        except ParameterError as err:
            raise errors.invalid_input(str(err)).wrap("Failed to validate the runtime parameters") from None
        with self._store.lock:
            run_id = body.get("run_id") or str(uuid.uuid4())
            if run_id in self._store.runs:
                raise errors.internal("Failed to store the run", f"a run with id {run_id} already exists")
            created_at = now_seconds()
            run = Run(
                run_id=run_id,
                experiment_id=experiment.experiment_id,
                namespace=experiment.namespace,
                display_name=body["display_name"],
                description=body.get("description", ""),
                pipeline_name=pipeline_name,
                pipeline_id=pipeline_id,
                pipeline_version_id=version_id,
                spec_digest=self._store.add_spec(spec),
                inline_spec="pipeline_spec" in body,
                parameters=parameters,
                pipeline_root=runtime_config.get("pipeline_root", ""),
                has_runtime_config="runtime_config" in body,
                service_account=body.get("service_account") or self._tenancy.default_service_account,
                created_at=created_at,
                state=RunState.PENDING,
                state_history=[StateChange(update_time=created_at, state=RunState.PENDING)],
                progress=self._engine.new_progress(spec),
                plugins_input=body.get("plugins_input"),
            )
            self._store.save_run(run)
            self._experiments.record_run_created(experiment, created_at)
        return run, spec

    def _experiment_for(self, experiment_id: str) -> Experiment:
        if not experiment_id:
            if self._tenancy.multi_user:
                raise errors.invalid_input("Experiment id can not be empty in multi-user mode")
            experiment_id = self._experiments.default_experiment_id or ""
        try:
            return self._experiments.fetch(experiment_id)
        except ApiError as err:
            raise err.wrap(
                "Failed to create a run due to invalid experimentId and namespace combination"
            ) from None

    def _pipeline_source(self, body: dict[str, Any]) -> tuple[PipelineSpec, str, str, str]:
        """(spec, KFP pipeline name, pipeline id, version id); every failure here is a 500."""
        fetch_failed = "Failed to fetch a template with an invalid pipeline spec manifest"
        if "pipeline_spec" in body:
            try:
                spec = PipelineSpec.from_document(body["pipeline_spec"])
            except PipelineSpecError as err:
                raise errors.internal(fetch_failed, str(err)) from None
            return spec, spec.pipeline_name, "", ""
        reference = body.get("pipeline_version_reference", {})
        pipeline_id = reference.get("pipeline_id", "")
        version_id = reference.get("pipeline_version_id", "")
        if not pipeline_id and not version_id:
            # Also the case for the deprecated top-level pipeline_version_id, which is ignored
            # (docs/emulator.md §4.4).
            raise errors.internal(fetch_failed, "the run has no pipeline source")
        try:
            if version_id:
                version = self._pipelines.fetch_version(version_id)
                if pipeline_id and pipeline_id != version.pipeline_id:
                    raise errors.invalid_input(
                        f"pipeline version {version_id} does not belong to pipeline {pipeline_id}"
                    )
            else:
                self._pipelines.fetch(pipeline_id)
                latest = self._pipelines.latest_version(pipeline_id)
                if latest is None:
                    raise errors.not_found("PipelineVersion", f"latest of pipeline {pipeline_id}")
                version = latest
            pipeline = self._pipelines.fetch(version.pipeline_id)
        except ApiError as err:
            # NotFound and InvalidArgument alike come back as Internal (docs/emulator.md §7).
            raise errors.internal(
                "Failed to fetch a template with an error fetching manifest", err.message
            ) from None
        return (
            self._store.spec(version.spec_digest),
            pipeline.name,
            pipeline.pipeline_id,
            version.pipeline_version_id,
        )

    # --- read ----------------------------------------------------------------------------------

    def fetch(self, run_id: str) -> Run:
        with self._store.lock:
            run = self._store.runs.get(run_id)
        if run is None:
            raise errors.not_found("Run", run_id).wrap(f"Failed to fetch run {run_id}")
        return run

    def get(self, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                run = self.fetch(run_id)
            except ApiError as err:
                raise err.wrap("Failed to get a run") from None
            return render_run(run, self._store.spec(run.spec_digest))

    def list(
        self,
        *,
        namespace: str,
        experiment_id: str,
        page_token: str,
        page_size: int,
        sort_by: str,
        filter_text: str,
    ) -> dict[str, Any]:
        query = parse_list_request(
            RUNS, page_token=page_token, page_size=page_size, sort_by=sort_by, filter_text=filter_text
        )
        namespace = self._tenancy.namespace(namespace)
        if experiment_id:
            try:
                namespace = self._experiments.fetch(experiment_id).namespace
            except ApiError as err:
                raise err.wrap(
                    f"Failed to list runs due to error fetching namespace for experiment {experiment_id}. "
                    "Try filtering based on namespace"
                ).wrap("Failed to list runs") from None
        elif self._tenancy.multi_user and not namespace:
            raise errors.invalid_input(
                "ListRuns must filter by namespace or experiment in multi-user mode"
            ).wrap("Failed to list runs")
        with self._store.lock:
            candidates = [
                run
                for run in self._store.runs.values()
                if (run.experiment_id == experiment_id if experiment_id else run.namespace == namespace)
            ]
            result = run_list(query, candidates)
            rendered = [render_run(run, self._store.spec(run.spec_digest)) for run in result.items]
        return render_list("runs", rendered, result.total_size, result.next_page_token)

    # --- change --------------------------------------------------------------------------------

    def terminate(self, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                run = self.fetch(run_id)
                if run.state not in TERMINABLE_STATES:
                    # The terminate UPDATE only matches active rows, hence the wording
                    # (docs/emulator.md §4.6).
                    raise errors.invalid_input(f"Failed to terminate a run {run_id}. Row not found")
            except ApiError as err:
                raise err.wrap("Failed to terminate a run") from None
            self._engine.terminate(run)
        return {}

    def retry(self, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                run = self.fetch(run_id)
                if run.state != RunState.FAILED:
                    raise errors.bad_request(
                        "Workflow must be Failed/Error to retry", "workflow cannot be retried"
                    )
            except ApiError as err:
                raise err.wrap("Retry run failed").wrap("Failed to retry a run") from None
            self._engine.retry(run)
        return {}

    def archive(self, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                run = self.fetch(run_id)
            except ApiError as err:
                raise err.wrap("Failed to archive a run") from None
            run.storage_state = StorageState.ARCHIVED
            self._store.save_run(run)
        return {}

    def unarchive(self, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                run = self.fetch(run_id)
                experiment = self._store.experiments.get(run.experiment_id)
                if experiment is not None and experiment.storage_state == StorageState.ARCHIVED:
                    raise errors.failed_precondition(
                        f"Failed to unarchive run {run_id} as experiment {run.experiment_id} is archived"
                    )
            except ApiError as err:
                raise err.wrap("Failed to unarchive a run") from None
            run.storage_state = StorageState.AVAILABLE
            self._store.save_run(run)
        return {}

    def delete(self, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                self.fetch(run_id)
            except ApiError as err:
                raise err.wrap("Failed to delete a run") from None
            self._engine.forget(run_id)
            self._store.delete_run(run_id)
            self._scenarios.forget_run(run_id)
        return {}
