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

Pace. The agent queues a Workflow's report one second after a change, and every further
change before the report doubles that delay (its work queue's exponential rate limiter,
reset only once a report is done), so a burst of patches is reported tens of seconds
late. The driver therefore writes a Workflow's status at most once per
``REPORT_GAP_SECONDS`` after any change to it (its own patches, or the server's). Within
a phase the latest status wins, but every phase the run passes through is written, in
order: in a cluster a run is Running for minutes, so its history always shows it. The
agent's first report of a new Workflow (no phase) comes before the first status, and
its report of a terminated one (CANCELING) before the failure.
"""

from __future__ import annotations

import json
import logging
import threading
import time
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
from kfp_devstack.waiting import WaitTimeout, wait_until

LOG = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
RUN_ID_LABEL = "pipeline/runid"
_ADOPT_SECONDS = 10.0  # how long a Workflow's run may take to appear on the server
REPORT_GAP_SECONDS = 1.25  # the agent's first requeue delay (1 s) and a margin
_WATCH_SECONDS = 60
_RETRY_SECONDS = 1.0
_API = "/apis/v2beta1"


class RealKfpReader:
    """Reads what the driver needs from the real server, directly (not counted, never faulted);
    from a multi-user server as ``user``, whom it must allow to read runs and pipelines."""

    def __init__(self, base_url: str, user: str = "") -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"kubeflow-userid": user} if user else {}

    def get(self, path: str) -> dict[str, Any] | None:
        request = urllib.request.Request(f"{self._base}{_API}{path}", headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise


class WorkflowDriver:
    def __init__(
        self, store: Store, *, kfp_url: str, kubeconfig: Path, namespace: str, kfp_user: str = ""
    ) -> None:
        self._store = store
        self._kfp = RealKfpReader(kfp_url, kfp_user)
        self._multi_user = bool(kfp_user)
        self._namespace = namespace
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self._api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(configuration))
        self._engine: RunEngine | None = None
        self._adopting = threading.Lock()
        self._stopping = threading.Event()
        # run id -> the status last written (or about to be), and the statuses still to write.
        self._published: dict[str, dict[str, Any] | None] = {}
        # run id -> (workflow, statuses to write in order: one per phase, the latest of each).
        self._to_publish: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._last_change: dict[str, float] = {}  # workflow name -> when it last changed (monotonic)
        self._written_phase: dict[str, str] = {}  # run id -> the phase of the status last written
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
            name, queued = self._to_publish.get(run.run_id, (run.progress.workflow_name, []))
            if queued and queued[-1]["phase"] == status["phase"]:
                queued[-1] = status
            else:
                queued.append(status)
            self._to_publish[run.run_id] = (name, queued)
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
        with self._publishing:
            self._last_change.setdefault(workflow["metadata"]["name"], time.monotonic())
            if event != "ADDED":  # a listing's ADDED is no change: it may be old news
                self._last_change[workflow["metadata"]["name"]] = time.monotonic()
            self._publishing.notify_all()
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
            # The server creates the Workflow first and stores the run right after: wait for it.
            try:
                real = wait_until(
                    lambda: self._kfp.get(f"/runs/{run_id}"), timeout=_ADOPT_SECONDS, interval=0.05
                )
            except WaitTimeout:
                LOG.warning(
                    "workflow %s has no run %s on the server: left alone",
                    workflow["metadata"]["name"],
                    run_id,
                )
                return
            spec, pipeline_name = self._pipeline_of(real)
            created_at = parse_timestamp(real["created_at"])
            runtime_config = real.get("runtime_config", {})
            progress = engine.new_progress(spec)
            progress.workflow_name = workflow["metadata"]["name"]
            reference = real.get("pipeline_version_reference", {})
            run = Run(
                run_id=run_id,
                experiment_id=real.get("experiment_id", ""),
                # A multi-user server runs each run in its experiment's namespace, the Workflow's.
                namespace=workflow["metadata"]["namespace"] if self._multi_user else "",
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
            elif (
                # Retry: the server writes a Workflow we left Failed back as Running (echoes of our own
                # Running statuses, written late by the pacing, are not that).
                run.state == RunState.FAILED
                and phase == "Running"
                and deadline != 0
                and self._written_phase.get(run.run_id) in ("Failed", "Error")
            ):
                self._written_phase.pop(run.run_id, None)
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
            self._last_change.pop(workflow["metadata"]["name"], None)
            self._published.pop(run_id, None)
            self._terminated.discard(run_id)
            self._written_phase.pop(run_id, None)

    # --- writing the statuses ---------------------------------------------------------------------

    def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            with self._publishing:
                batch = self._due()
                while not batch and not self._stopping.is_set():
                    self._publishing.wait(self._next_due_in())
                    batch = self._due()
                for name, _ in batch.values():
                    self._last_change[name] = time.monotonic()
            for run_id, (name, status) in batch.items():
                try:
                    self._patch(run_id, name, status)
                except Exception:
                    LOG.exception("writing the status of workflow %s failed", name)
                    with self._store.lock:
                        self._published.pop(run_id, None)

    def _due(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """The next status of each Workflow that has been quiet for the gap, taken off the list."""
        now = time.monotonic()
        due: dict[str, tuple[str, dict[str, Any]]] = {}
        for run_id, (name, queued) in list(self._to_publish.items()):
            if now >= self._last_change.get(name, 0.0) + REPORT_GAP_SECONDS:
                due[run_id] = (name, queued.pop(0))
                if not queued:
                    del self._to_publish[run_id]
        return due

    def _next_due_in(self) -> float:
        if not self._to_publish:
            return 1.0
        now = time.monotonic()
        soonest = min(
            self._last_change.get(name, 0.0) + REPORT_GAP_SECONDS for name, _ in self._to_publish.values()
        )
        return max(0.01, min(1.0, soonest - now))

    def _patch(self, run_id: str, name: str, status: dict[str, Any]) -> None:
        labels = {"workflows.argoproj.io/phase": status["phase"]}
        if status["phase"] != "Running":
            labels["workflows.argoproj.io/completed"] = "true"
        body = {"metadata": {"labels": labels}, "status": status}
        for attempt in range(5):
            try:
                # The CRD has no status subresource: the status is patched on the object itself,
                # all of it at once (the server re-reads the Workflow on a terminal report).
                self._api.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self._namespace,
                    PLURAL,
                    name,
                    body,
                    _content_type="application/merge-patch+json",
                )
                self._written_phase[run_id] = status["phase"]
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
