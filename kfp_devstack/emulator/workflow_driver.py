"""Drives the Workflows a real KFP API server creates, as Argo and the KFP launcher would.

With a real API server (``EmulatorConfig.real_kfp_url``) the emulator's run engine
does not own the runs: the server does, and each becomes an Argo Workflow in the
``kubeflow`` namespace, labelled ``pipeline/runid``, that nothing executes. This driver
watches those Workflows and gives each run a *shadow* in the emulator's store, which
the run engine moves through its scenario exactly as it moves an emulated run
(scripts, held tasks, release and fail commands, scripted artifacts, ML Metadata
written as the launcher writes it). Whenever a shadow moves, its Workflow's status is
patched to match (``workflow_status``), and the real persistence agent reports it to
the real server, as in a cluster.

What the server does to a Workflow is followed too:

* terminate sets ``spec.activeDeadlineSeconds: 0``: Argo then fails the workflow, so the
  shadow is terminated (it fails after ``cancel_seconds``) while the server shows
  CANCELING;
* retry writes the Workflow back with phase Running: the shadow is retried;
* delete deletes the Workflow: the shadow goes.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes import watch

from kfp_devstack.emulator.models import Run, RunState, StateChange
from kfp_devstack.emulator.pipeline_spec import PipelineSpec
from kfp_devstack.emulator.progression import RunEngine
from kfp_devstack.emulator.store import Store
from kfp_devstack.emulator.timestamps import parse_timestamp
from kfp_devstack.emulator.workflow_status import workflow_status

LOG = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
RUN_ID_LABEL = "pipeline/runid"
_WATCH_SECONDS = 60
_RETRY_SECONDS = 1.0
_API = "/apis/v2beta1"


class RealKfpReader:
    """Reads what the driver needs from the real server, directly (not counted, never faulted)."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self._base}{_API}{path}", timeout=30) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise


class WorkflowDriver:
    def __init__(self, store: Store, *, kfp_url: str, kubeconfig: Path, namespace: str) -> None:
        self._store = store
        self._kfp = RealKfpReader(kfp_url)
        self._namespace = namespace
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self._api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(configuration))
        self._engine: RunEngine | None = None
        self._adopting = threading.Lock()
        self._stopping = threading.Event()
        # run id -> the status last written (or about to be), and the statuses still to write.
        self._published: dict[str, dict[str, Any] | None] = {}
        self._to_publish: dict[str, tuple[str, dict[str, Any]]] = {}
        self._terminated: set[str] = set()
        self._publishing = threading.Condition()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def attach(self, engine: RunEngine) -> None:
        self._engine = engine

    def start(self) -> None:
        for target, name in ((self._watch_loop, "workflow-watch"), (self._publish_loop, "workflow-status")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._publishing:
            self._publishing.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    # --- the engine's side --------------------------------------------------------------------

    def observe(self, run: Run) -> None:
        """Called by the engine, under the store's lock, after each pass over a shadow run."""
        status = workflow_status(run, terminated=run.run_id in self._terminated)
        if status is None or self._published.get(run.run_id) == status:
            return
        self._published[run.run_id] = status
        with self._publishing:
            self._to_publish[run.run_id] = (run.progress.workflow_name, status)
            self._publishing.notify_all()

    def find_run(self, run_id: str) -> Run | None:
        """The shadow of a run, adopting its Workflow now if the watch has not yet seen it."""
        with self._store.lock:
            run = self._store.runs.get(run_id)
        if run is not None:
            return run
        listed = self._api.list_namespaced_custom_object(
            GROUP, VERSION, self._namespace, PLURAL, label_selector=f"{RUN_ID_LABEL}={run_id}"
        )
        for workflow in listed.get("items", []):
            self._on_workflow("ADDED", workflow)
        with self._store.lock:
            return self._store.runs.get(run_id)

    # --- following the Workflows ----------------------------------------------------------------

    def _watch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                listed = self._api.list_namespaced_custom_object(
                    GROUP, VERSION, self._namespace, PLURAL, label_selector=RUN_ID_LABEL
                )
                for workflow in listed.get("items", []):
                    self._on_workflow("ADDED", workflow)
                version = listed["metadata"]["resourceVersion"]
                while not self._stopping.is_set():
                    stream = watch.Watch().stream(
                        self._api.list_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        self._namespace,
                        PLURAL,
                        label_selector=RUN_ID_LABEL,
                        resource_version=version,
                        timeout_seconds=_WATCH_SECONDS,
                        allow_watch_bookmarks=True,
                    )
                    for event in stream:
                        workflow = event["object"]
                        version = workflow["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self._on_workflow(event["type"], workflow)
                        if self._stopping.is_set():
                            return
            except Exception:  # the apiserver went away, or our resourceVersion expired: list again
                if self._stopping.is_set():
                    return
                LOG.warning("watching Workflows failed; listing again", exc_info=True)
                self._stopping.wait(_RETRY_SECONDS)

    def _on_workflow(self, event: str, workflow: dict[str, Any]) -> None:
        run_id = workflow["metadata"].get("labels", {}).get(RUN_ID_LABEL)
        if not run_id:
            return
        try:
            if event == "DELETED":
                self._forget(run_id, workflow)
                return
            with self._store.lock:
                run = self._store.runs.get(run_id)
            if run is None:
                self._adopt(run_id, workflow)
            else:
                self._follow(run, workflow)
        except Exception:
            LOG.exception("handling the Workflow of run %s failed", run_id)

    def _adopt(self, run_id: str, workflow: dict[str, Any]) -> None:
        """Creates the shadow of a run the server has just created."""
        engine = self._require_engine()
        with self._adopting:
            with self._store.lock:
                if run_id in self._store.runs:
                    return
            real = self._kfp.get(f"/runs/{run_id}")
            if real is None:
                return  # deleted meanwhile
            spec, pipeline_name = self._pipeline_of(real)
            created_at = parse_timestamp(real["created_at"])
            runtime_config = real.get("runtime_config", {})
            progress = engine.new_progress(spec)
            progress.workflow_name = workflow["metadata"]["name"]
            reference = real.get("pipeline_version_reference", {})
            run = Run(
                run_id=run_id,
                experiment_id=real.get("experiment_id", ""),
                namespace="",
                display_name=real.get("display_name", ""),
                description=real.get("description", ""),
                pipeline_name=pipeline_name,
                pipeline_id=reference.get("pipeline_id", ""),
                pipeline_version_id=reference.get("pipeline_version_id", ""),
                spec_digest=self._store.add_spec(spec),
                inline_spec="pipeline_spec" in real,
                parameters=dict(runtime_config.get("parameters", {})),
                pipeline_root=runtime_config.get("pipeline_root", ""),
                has_runtime_config=bool(runtime_config),
                service_account=real.get("service_account", ""),
                created_at=created_at,
                state=RunState.PENDING,
                state_history=[StateChange(update_time=created_at, state=RunState.PENDING)],
                progress=progress,
            )
            with self._store.lock:
                self._store.save_run(run)
            engine.track(run)
        LOG.info("driving workflow %s of run %s (pipeline %s)", progress.workflow_name, run_id, pipeline_name)
        self._follow(run, workflow)

    def _pipeline_of(self, real: dict[str, Any]) -> tuple[PipelineSpec, str]:
        if "pipeline_spec" in real:
            spec = PipelineSpec.from_document(real["pipeline_spec"])
            return spec, spec.pipeline_name
        reference = real["pipeline_version_reference"]
        version = self._kfp.get(
            f"/pipelines/{reference['pipeline_id']}/versions/{reference['pipeline_version_id']}"
        )
        pipeline = self._kfp.get(f"/pipelines/{reference['pipeline_id']}")
        if version is None or pipeline is None:
            raise LookupError(f"the pipeline version of run {real['run_id']} is gone")
        return PipelineSpec.from_document(version["pipeline_spec"]), str(pipeline.get("name", ""))

    def _follow(self, run: Run, workflow: dict[str, Any]) -> None:
        """Reacts to what the server did to a Workflow: terminate or retry."""
        engine = self._require_engine()
        deadline = workflow.get("spec", {}).get("activeDeadlineSeconds")
        phase = (workflow.get("status") or {}).get("phase", "")
        with self._store.lock:
            active = run.state not in (RunState.SUCCEEDED, RunState.FAILED)
            if deadline == 0 and active and run.state != RunState.CANCELING:
                self._terminated.add(run.run_id)
                engine.terminate(run)
            elif run.state == RunState.FAILED and phase == "Running" and deadline != 0:
                self._terminated.discard(run.run_id)
                self._published.pop(run.run_id, None)
                engine.retry(run)

    def _forget(self, run_id: str, workflow: dict[str, Any]) -> None:
        engine = self._require_engine()
        with self._store.lock:
            run = self._store.runs.get(run_id)
            if run is None or run.progress.workflow_name != workflow["metadata"]["name"]:
                return
            engine.forget(run_id)
            self._store.delete_run(run_id)
            self._published.pop(run_id, None)
            self._terminated.discard(run_id)

    # --- writing the statuses ---------------------------------------------------------------------

    def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            with self._publishing:
                while not self._to_publish and not self._stopping.is_set():
                    self._publishing.wait(1.0)
                batch, self._to_publish = self._to_publish, {}
            for run_id, (name, status) in batch.items():
                self._patch(run_id, name, status)

    def _patch(self, run_id: str, name: str, status: dict[str, Any]) -> None:
        labels = {"workflows.argoproj.io/phase": status["phase"]}
        if status["phase"] != "Running":
            labels["workflows.argoproj.io/completed"] = "true"
        body = {"metadata": {"labels": labels}, "status": status}
        for attempt in range(5):
            try:
                # The CRD has no status subresource: the status is patched on the object itself,
                # all of it at once (the server re-reads the Workflow on a terminal report).
                self._api.api_client.call_api(
                    f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
                    "PATCH",
                    path_params={"namespace": self._namespace, "name": name},
                    header_params={
                        "Content-Type": "application/merge-patch+json",
                        "Accept": "application/json",
                    },
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                )
                return
            except kubernetes.client.ApiException as err:
                if err.status == 404:
                    return  # deleted meanwhile
                LOG.warning("patching workflow %s of run %s failed (%s)", name, run_id, err.status)
            self._stopping.wait(0.2 * (attempt + 1))
        with self._store.lock:
            self._published.pop(run_id, None)  # write it again on the next pass

    def _require_engine(self) -> RunEngine:
        if self._engine is None:
            raise RuntimeError("the driver has no run engine attached")
        return self._engine
