"""The Job that compiles a Pipeline built from an image, and what it hands back, as pure functions.

The Job runs the user's image with the operator's compiler script (``kfp_operator/compiler.py``),
which an init container running the operator's image copies into a shared ``emptyDir``. The
script imports ``module.function``, compiles it with the KFP SDK (or TFX) found in the user's
image, and writes the result into a ConfigMap named like the Job, through the API server (its
ServiceAccount may create ConfigMaps in the namespace): the compiled spec under
``pipeline.yaml``, or under ``error`` a JSON ``{reason, message, output}`` saying why it could not.
The ConfigMap has an ownerReference to the Job; the operator trusts only a ConfigMap that names
the Job's UID, which only the Job's pod knows (from the downward API) before the Job exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.resource import SPEC_AND_STATUS, Resource
from reconcilers.api import API_VERSION, GROUP
from reconcilers.api.pipeline import PIPELINES, PipelineView
from reconcilers.timestamps import parse_time

JOBS = Resource("batch", "v1", "jobs", "Job", fields=SPEC_AND_STATUS)

# Shared with kfp_operator/compiler.py, which runs in the user's image and imports nothing of ours.
OUTPUT_KEY = "pipeline.yaml"
ERROR_KEY = "error"
COMPILER_DIR = "/kfp-compiler"
COMPILER_SCRIPT = f"{COMPILER_DIR}/compile.py"
JOB_UID_ENV = "KFP_COMPILER_JOB_UID"
NAMESPACE_ENV = "KFP_COMPILER_NAMESPACE"
# The label the Job API puts on a Job's pods (and its template) with the Job's UID.
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"

PIPELINE_LABEL = f"{GROUP}/pipeline"
VERSION_ANNOTATION = f"{GROUP}/pipeline-version"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT = "pipeline-compiler"
MANAGED_BY = "kfp-operator"
# Kept this long after it finished (in clusters whose TTL controller runs), for `kubectl logs`.
FINISHED_JOB_TTL_SECONDS = 3600

# Reasons the compiler script reports; anything else is a CompileFailed.
COMPILER_REASONS = ("ModuleNotFound", "FunctionNotFound", "NotAPipeline", "CompileFailed", "OutputTooLarge")
COMPILE_FAILED = "CompileFailed"


@dataclass(frozen=True)
class CompileSettings:
    """``pipelines.*`` settings: the compiler's image and ServiceAccount, and the time limit."""

    image: str
    service_account: str
    timeout_seconds: float


def job_name(pipeline: PipelineView, version: str) -> str:
    """Deterministic per Pipeline (UID) and version, and at most 63 characters (a label value)."""
    digest = hashlib.sha1(f"{pipeline.uid}/{version}".encode(), usedforsecurity=False).hexdigest()[:10]
    prefix = pipeline.name[:40].rstrip("-.")
    return f"{prefix}-compile-{digest}"


def compile_job(
    pipeline: PipelineView, version: str, kfp_name: str, settings: CompileSettings
) -> dict[str, Any]:
    """The Job compiling ``pipeline`` at ``version``."""
    spec = pipeline.spec
    name = job_name(pipeline, version)
    labels = {
        PIPELINE_LABEL: pipeline.name[:63].rstrip("-._"),
        COMPONENT_LABEL: COMPONENT,
        MANAGED_BY_LABEL: MANAGED_BY,
    }
    args = [
        f"--framework={spec.framework}",
        f"--function={spec.function}",
        f"--output={name}",
        f"--pipeline-name={kfp_name}",
        f"--image={spec.image}",
    ]
    args += [f"--beam-arg={arg_name}={value}" for arg_name, value in spec.beam_args]
    env: list[dict[str, Any]] = [{"name": env_name, "value": value} for env_name, value in spec.env]
    env += [
        {
            "name": JOB_UID_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{CONTROLLER_UID_LABEL}']"}},
        },
        {"name": NAMESPACE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    mount = [{"name": "kfp-compiler", "mountPath": COMPILER_DIR}]
    timeout = max(1, int(settings.timeout_seconds))
    return {
        "apiVersion": JOBS.api_version,
        "kind": JOBS.kind,
        "metadata": {
            "name": name,
            "namespace": pipeline.namespace,
            "labels": labels,
            "annotations": {VERSION_ANNOTATION: version},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": PIPELINES.kind,
                    "name": pipeline.name,
                    "uid": pipeline.uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,  # compiling is deterministic: a failure is reported, not retried
            "activeDeadlineSeconds": timeout,
            "ttlSecondsAfterFinished": FINISHED_JOB_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.service_account,
                    "volumes": [{"name": "kfp-compiler", "emptyDir": {}}],
                    "initContainers": [
                        {
                            "name": "install-compiler",
                            "image": settings.image,
                            "command": ["python", "-m", "kfp_operator.compiler", "install", COMPILER_DIR],
                            "volumeMounts": mount,
                        }
                    ],
                    "containers": [
                        {
                            "name": "compile",
                            "image": spec.image,
                            "command": ["python3", COMPILER_SCRIPT],
                            "args": args,
                            "env": env,
                            "volumeMounts": mount,
                        }
                    ],
                },
            },
        },
    }


# -- what became of it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Running:
    started_at: datetime | None


@dataclass(frozen=True)
class Finished:
    succeeded: bool
    reason: str
    message: str


JobState = Running | Finished


def job_state(job: Mapping[str, Any]) -> JobState:
    """Running, or finished (``Complete`` or ``Failed``) with the Job controller's reason."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return Finished(True, "Complete", str(condition.get("message") or ""))
        if condition.get("type") == "Failed":
            return Finished(
                False, str(condition.get("reason") or "Failed"), str(condition.get("message") or "")
            )
    metadata = job.get("metadata") or {}
    return Running(parse_time(status.get("startTime")) or parse_time(metadata.get("creationTimestamp")))


def timed_out(job: Mapping[str, Any], state: JobState, now: datetime, timeout_seconds: float) -> bool:
    """Whether the Job has been going for longer than the limit (its deadline, or ours without one)."""
    if isinstance(state, Finished):
        return not state.succeeded and state.reason == "DeadlineExceeded"
    created = parse_time((job.get("metadata") or {}).get("creationTimestamp"))
    started = created or state.started_at
    return started is not None and (now - started).total_seconds() > timeout_seconds


@dataclass(frozen=True)
class CompiledOutput:
    content: str


@dataclass(frozen=True)
class CompileError:
    reason: str
    message: str


def read_output(
    job: Mapping[str, Any], config_map: Mapping[str, Any] | None
) -> CompiledOutput | CompileError | None:
    """What the Job handed back, or None when it wrote nothing (or something it did not write)."""
    if config_map is None:
        return None
    job_uid = (job.get("metadata") or {}).get("uid")
    owners = (config_map.get("metadata") or {}).get("ownerReferences") or ()
    if not job_uid or not any(o.get("uid") == job_uid and o.get("kind") == JOBS.kind for o in owners):
        return None
    data = config_map.get("data") or {}
    if OUTPUT_KEY in data:
        return CompiledOutput(str(data[OUTPUT_KEY]))
    if ERROR_KEY in data:
        try:
            error = json.loads(data[ERROR_KEY])
        except ValueError:
            return CompileError(COMPILE_FAILED, str(data[ERROR_KEY])[:2000])
        reason = str(error.get("reason") or COMPILE_FAILED)
        message = str(error.get("message") or "")
        output = str(error.get("output") or "").strip()
        if output:
            message = f"{message}; output:\n{_tail(output)}"
        return CompileError(reason if reason in COMPILER_REASONS else COMPILE_FAILED, message)
    return None


def _tail(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]
