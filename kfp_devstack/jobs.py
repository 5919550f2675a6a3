"""The local stack's Job executor: it plays the kubelet (and the Job controller's bookkeeping) for Jobs.

The local control plane has no kubelet and no kube-controller-manager, so a Job would stay active
forever. This executor watches Jobs and runs the ones whose image it knows as processes on this
machine, as a node would run their pod: the init containers first, then the main container, with
the container's command and arguments, its environment (values and the downward API), its
``emptyDir`` volumes as temporary directories, and a token of the pod's ServiceAccount for the API
server (from the TokenRequest API, so the ServiceAccount's RBAC applies, as in a cluster). Then it
completes the Job as the Job controller would (``Complete`` or ``Failed`` conditions, counts and
times; ``DeadlineExceeded`` past ``activeDeadlineSeconds``), and kills the process when the Job is
deleted. Output goes to a log file per Job (the local ``kubectl logs``).

Images map to local directories (``--image kfp-examples=examples/pipelines``): the directory is
the image's working directory, holding its code. ``python``/``python3`` in a container's command
is the interpreter of that image: the operator's own environment for the compiler's init container
(the image set as ``pipelines.compilerImage``), and a virtualenv with the real KFP SDK
(``kfp_devstack.kfp_sdk``) for every mapped image. A Job whose image is not mapped, or whose
ServiceAccount does not exist, is left pending, as a cluster would leave its pod.

``kfp-devstack up`` runs it as a process (``python -m kfp_devstack.jobs``); tests run it in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes

from kfp_devstack.kfp_sdk import kfp_sdk_python

log = logging.getLogger("kfp_devstack.jobs")

POLL_SECONDS = 0.25
TOKEN_SECONDS = 3600
_LABEL_FIELD = re.compile(r"metadata\.labels\['([^']+)'\]")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def repository(image: str) -> str:
    """The image's repository: without its tag and digest."""
    name = image.split("@", 1)[0]
    head, colon, tail = name.rpartition(":")
    return head if colon and "/" not in tail else name


@dataclass
class _Running:
    uid: str
    namespace: str
    name: str
    thread: threading.Thread | None = None
    process: subprocess.Popen[bytes] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class LocalJobExecutor:
    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        images: Mapping[str, Path],
        work_dir: Path,
        namespaces: Sequence[str] | None = None,
        image_python: Callable[[], Path] = kfp_sdk_python,
        operator_python: str = sys.executable,
    ) -> None:
        self._api_client = api_client
        self._batch = kubernetes.client.BatchV1Api(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._images = {name: Path(path).resolve() for name, path in images.items()}
        self._work_dir = work_dir
        self._namespaces = list(namespaces or [])
        self._image_python = image_python
        self._operator_python = operator_python
        self._running: dict[str, _Running] = {}
        self._finished: set[str] = set()
        self._ignored: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalJobExecutor:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="job-executor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            running = list(self._running.values())
        for job in running:
            self._cancel(job)
        for job in running:
            if job.thread is not None:
                job.thread.join(timeout=10)

    def __enter__(self) -> LocalJobExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_file(self, namespace: str, name: str) -> Path:
        return self._work_dir / f"{namespace}_{name}.log"

    # -- watching -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync(self._list_jobs())
            except Exception:  # the API server restarting, say: try again shortly
                log.exception("listing jobs failed")
            self._stop.wait(POLL_SECONDS)

    def _list_jobs(self) -> list[dict[str, Any]]:
        if not self._namespaces:
            response = self._batch.list_job_for_all_namespaces(_preload_content=False)
            return list(_json(response).get("items") or [])
        jobs: list[dict[str, Any]] = []
        for namespace in self._namespaces:
            response = self._batch.list_namespaced_job(namespace, _preload_content=False)
            jobs.extend(_json(response).get("items") or [])
        return jobs

    def _sync(self, jobs: list[dict[str, Any]]) -> None:
        present = {job["metadata"]["uid"] for job in jobs}
        with self._lock:
            gone = [job for uid, job in self._running.items() if uid not in present]
        for job in gone:
            log.info("job %s/%s was deleted: stopping it", job.namespace, job.name)
            self._cancel(job)
        for job in jobs:
            uid = job["metadata"]["uid"]
            with self._lock:
                if uid in self._running or uid in self._finished or uid in self._ignored:
                    continue
            if _finished(job):
                with self._lock:
                    self._finished.add(uid)
                continue
            self._begin(job)

    def _begin(self, job: dict[str, Any]) -> None:
        metadata = job["metadata"]
        uid, namespace, name = metadata["uid"], metadata["namespace"], metadata["name"]
        pod = job["spec"]["template"]["spec"]
        images = [c["image"] for c in pod.get("containers") or ()]
        unknown = [image for image in images if repository(image) not in self._images]
        if unknown:
            log.info("job %s/%s: image %s unknown here; its pod stays pending", namespace, name, unknown)
            with self._lock:
                self._ignored.add(uid)
            return
        running = _Running(uid, namespace, name)
        thread = threading.Thread(target=self._run, args=(job, running), name=f"job-{name}", daemon=True)
        running.thread = thread
        with self._lock:
            self._running[uid] = running
        thread.start()

    def _cancel(self, job: _Running) -> None:
        job.cancelled.set()
        process = job.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    # -- running a Job's pod --------------------------------------------------------------------

    def _run(self, job: dict[str, Any], running: _Running) -> None:
        metadata = job["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        try:
            outcome = self._run_pod(job, running)
            if outcome is not None and not running.cancelled.is_set():
                self._complete(namespace, name, *outcome)
        except Exception:
            log.exception("job %s/%s: the executor failed", namespace, name)
        finally:
            with self._lock:
                self._running.pop(running.uid, None)
                self._finished.add(running.uid)

    def _run_pod(self, job: dict[str, Any], running: _Running) -> tuple[bool, str, str] | None:
        """Runs the pod; returns (succeeded, reason, message), or None to leave the Job pending."""
        metadata, spec = job["metadata"], job["spec"]
        namespace, name = metadata["namespace"], metadata["name"]
        pod = spec["template"]["spec"]
        account = pod.get("serviceAccountName") or "default"
        try:
            token = self._core.create_namespaced_service_account_token(
                account,
                namespace,
                kubernetes.client.AuthenticationV1TokenRequest(
                    spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
                ),
            ).status.token
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
            log.info("job %s/%s: no serviceaccount %s; its pod stays pending", namespace, name, account)
            return None
        started_status = {"status": {"startTime": _now(), "active": 1}}
        self._batch.patch_namespaced_job_status(name, namespace, started_status)
        deadline = spec.get("activeDeadlineSeconds")
        started = time.monotonic()

        with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=self._work_dir) as pod_dir:
            root = Path(pod_dir)
            token_file = root / "token"
            token_file.write_text(token)
            volumes = {}
            for volume in pod.get("volumes") or ():
                if "emptyDir" not in volume:
                    return False, "Unsupported", f"volume {volume['name']} is not an emptyDir"
                volumes[volume["name"]] = root / "volumes" / volume["name"]
                volumes[volume["name"]].mkdir(parents=True)
            api = {
                "KFP_COMPILER_API_URL": self._api_client.configuration.host,
                "KFP_COMPILER_TOKEN_FILE": str(token_file),
                "KFP_COMPILER_CA_FILE": str(self._api_client.configuration.ssl_ca_cert or ""),
            }
            labels = (spec["template"].get("metadata") or {}).get("labels") or {}
            with self.log_file(namespace, name).open("ab") as output:
                for container in [*(pod.get("initContainers") or ()), *pod["containers"]]:
                    left = None if deadline is None else deadline - (time.monotonic() - started)
                    code = self._run_container(
                        container, job, labels, volumes, api, output, running, timeout=left
                    )
                    if running.cancelled.is_set():
                        return None
                    if code is None:
                        return False, "DeadlineExceeded", "Job was active longer than specified deadline"
                    if code != 0:
                        return False, "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        return True, "CompletionsReached", "Reached expected number of succeeded pods"

    def _run_container(
        self,
        container: Mapping[str, Any],
        job: Mapping[str, Any],
        labels: Mapping[str, str],
        volumes: Mapping[str, Path],
        api: Mapping[str, str],
        output: Any,
        running: _Running,
        *,
        timeout: float | None,
    ) -> int | None:
        """The container's exit code; None when it ran past the deadline (it is killed)."""
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts") or ()}
        words = [*container.get("command", []), *container.get("args", [])]
        argv = [_local_path(arg, mounts) for arg in words]
        image = repository(container["image"])
        if argv and argv[0] in ("python", "python3"):
            argv[0] = str(self._image_python()) if image in self._images else self._operator_python
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(next(iter(volumes.values()), self._work_dir)),
            "PYTHONUNBUFFERED": "1",
            **api,
            **_container_env(container, job, labels),
        }
        cwd = self._images.get(image, self._work_dir)
        if image not in self._images:
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the operator's environment
        output.write(f"--- {container['name']}: {' '.join(argv)}\n".encode())
        output.flush()
        running.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return running.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()
            return None

    def _complete(self, namespace: str, name: str, succeeded: bool, reason: str, message: str) -> None:
        """Finishes the Job as the Job controller does (the API server checks the conditions' order)."""
        now = _now()

        def condition(kind: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }

        status: dict[str, Any] = {"active": 0, "ready": 0, "terminating": 0}
        if succeeded:
            status |= {
                "succeeded": 1,
                "completionTime": now,
                "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
            }
        else:
            status |= {"failed": 1, "conditions": [condition("FailureTarget"), condition("Failed")]}
        try:
            self._batch.patch_namespaced_job_status(name, namespace, {"status": status})
        except kubernetes.client.ApiException as error:
            if error.status != 404:  # deleted meanwhile
                raise
        log.info("job %s/%s: %s (%s)", namespace, name, "complete" if succeeded else "failed", reason)


def _finished(job: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or ()
    )


def _local_path(arg: str, mounts: Mapping[str, Path]) -> str:
    for mount_path, local in mounts.items():
        if arg == mount_path or arg.startswith(mount_path.rstrip("/") + "/"):
            return str(local) + arg[len(mount_path.rstrip("/")) :]
    return arg


def _container_env(
    container: Mapping[str, Any], job: Mapping[str, Any], labels: Mapping[str, str]
) -> dict[str, str]:
    metadata = job["metadata"]
    env = {}
    for variable in container.get("env") or ():
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
            continue
        field_path = ((variable.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")
        label = _LABEL_FIELD.fullmatch(field_path)
        if label is not None:
            env[variable["name"]] = labels.get(label.group(1), "")
        elif field_path == "metadata.namespace":
            env[variable["name"]] = metadata["namespace"]
        elif field_path == "metadata.name":
            env[variable["name"]] = f"{metadata['name']}-local"
        else:
            env[variable["name"]] = ""
    return env


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kfp_devstack.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--image", action="append", default=[], help="REPOSITORY=DIRECTORY (repeatable)")
    parser.add_argument("--namespace", action="append", default=[], help="only these namespaces (repeatable)")
    parser.add_argument("--work-dir", type=Path, required=True, help="where Job logs and pod files go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    images = {}
    for mapping in args.image:
        name, _, directory = mapping.partition("=")
        images[name] = Path(directory)
    api_client = kubernetes.config.new_client_from_config(config_file=str(args.kubeconfig))
    executor = LocalJobExecutor(api_client, images=images, work_dir=args.work_dir, namespaces=args.namespace)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with executor:
        log.info("running Jobs of images %s", ", ".join(images) or "(none)")
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
