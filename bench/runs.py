"""The Runs the bench creates, and creating many of them at once.

Runs are created by a thread pool over one connection pool, the way a CI system or a
scheduler submitting a batch would. Each Run asks for what a typical user's does:
a pinned pipeline version, an experiment, two parameters and one output artifact
with a filter (so completion reads ML Metadata).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.kubehttp import GROUP, MERGE_PATCH, VERSION, KubeHttp, runs_path
from kfp_devstack.examples import PENGUIN_EXPERIMENT, PENGUIN_PIPELINE, PENGUIN_VERSION


def run_spec(pipeline: str = PENGUIN_PIPELINE, version: str = PENGUIN_VERSION) -> dict[str, Any]:
    return {
        "pipeline": f"{pipeline}:{version}",
        "experimentName": PENGUIN_EXPERIMENT,
        "runtimeParameters": [
            {"name": "TRAINING_RUNS", "value": "100"},
            {"name": "EXAMPLES", "value": "gs://bench/penguin/examples"},
        ],
        "artifacts": [{"name": "serving-model", "path": "Pusher:pushed_model:0[pushed == 1]"}],
    }


def run_body(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Run",
        "metadata": {"name": name},
        "spec": dict(spec),
    }


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index:05d}" for index in range(count)]


def create_runs(
    kube: KubeHttp, namespace: str, run_names: Iterable[str], spec: Mapping[str, Any], *, threads: int
) -> dict[str, float]:
    """Creates the Runs concurrently; returns, per name, the ``time.monotonic()`` its create returned."""

    def create(name: str) -> tuple[str, float]:
        kube.request("POST", runs_path(namespace), run_body(name, spec))
        return name, time.monotonic()

    with ThreadPoolExecutor(threads, thread_name_prefix="create") as pool:
        return dict(pool.map(create, run_names))


def create_completed_runs(
    kube: KubeHttp,
    namespace: str,
    run_names: Iterable[str],
    spec: Mapping[str, Any],
    status_for: Callable[[str], dict[str, Any]],
    *,
    threads: int,
) -> int:
    """Creates Runs that look completed, without the operator: a create, then a status patch
    (the API server ignores ``status`` on create). Returns the summed size of the Runs as the
    API server returned them after the status patch (its serialised JSON, in bytes)."""

    def create(name: str) -> int:
        kube.request("POST", runs_path(namespace), run_body(name, spec))
        response = kube.request(
            "PATCH",
            runs_path(namespace, name, "status"),
            {"status": status_for(name)},
            content_type=MERGE_PATCH,
        )
        return len(response.data)

    with ThreadPoolExecutor(threads, thread_name_prefix="create") as pool:
        return sum(pool.map(create, run_names))


def completed_status_like(
    template: Mapping[str, Any], template_run_id: str
) -> Callable[[str], dict[str, Any]]:
    """Statuses copied from a Run the operator completed, each with a KFP run id of its own.

    The copy keeps every field the operator writes (conditions, artifacts, the delivered
    completion event), so the cached objects are the size real completed Runs are.
    """
    text = json.dumps(template)

    def status_for(_name: str) -> dict[str, Any]:
        return json.loads(text.replace(template_run_id, str(uuid.uuid4())))

    return status_for
