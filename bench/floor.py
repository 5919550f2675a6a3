"""The floor: the least a controller must do to submit and complete Runs, as a separate process.

``python -m bench.floor --kubeconfig K --namespace NS --kfp URL ...`` runs until SIGTERM.
It learns about Runs from one list+watch (as any controller must), then, with the
operator's number of workers:

* per new Run: one KFP ``POST /runs`` (the pipeline version and experiment ids are
  given on the command line, and the parameter types read once at start: no
  resolution lookups) and one status patch;
* per poll interval: one bulk ``GET /runs`` of the runs finished since the last poll
  (a page per 200), and per finished Run one status patch.

No finalizer, no Kubernetes Events, no ML Metadata reads, no run-completion event.
The status patches are exactly the operator's: they are computed by the operator's
own pure functions (``reconcilers.run.status``), so they carry the same fields.
API server requests go through the operator's own token bucket with the same QPS
and burst, so both are held to the same client-side budget, and over the operator's
own HTTP transport (libcurl, ``controller.libcurl``), so each request costs both the same.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3

from bench.kubehttp import MERGE_PATCH, ApiError, KubeHttp, runs_path
from controller.libcurl import REPEATABLE_METHODS, CurlSession, TlsOptions
from controller.ratelimit import TokenBucket
from reconcilers.api.run import RunView
from reconcilers.run import status as run_status
from reconcilers.run.parameters import convert_values, declared_parameter_types
from reconcilers.run.resolve import PipelineVersion, Resolved
from reconcilers.run.submit import create_run_request
from reconcilers.run.tracking import KfpRunObservation, observation_from
from reconcilers.timestamps import format_time

FLOOR_MARKER = "bench-floor/run-uid="
PAGE_SIZE = 200
# The emulator shows a run as finished the moment it sets finished_at (whole seconds), so
# a one-second look-back suffices; a real KFP needs more (its persistence agent lags).
LOOKBACK = timedelta(seconds=1)
WATCH_TIMEOUT_SECONDS = 240


class LimitedKube:
    """API server requests, each waiting for a token first (as the operator's transport does)."""

    def __init__(self, kube: KubeHttp, limiter: TokenBucket) -> None:
        self._kube = kube
        self._limiter = limiter

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> Any:
        self._limiter.wait()
        return self._kube.request(method, path, body, content_type=content_type).json()

    def stream_lines(self, path: str, *, read_timeout: float) -> Iterator[bytes]:
        self._limiter.wait()
        return self._kube.open_stream(path, read_timeout=read_timeout).lines()


class Kfp:
    """KFP over the operator's transport: libcurl (``controller.libcurl``), POSTs over urllib3."""

    def __init__(self, url: str, pool_size: int) -> None:
        self._url = url.rstrip("/") + "/apis/v2beta1"
        self._http = CurlSession(TlsOptions())
        self._pool = urllib3.PoolManager(maxsize=pool_size, retries=False)

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/runs", body=json.dumps(body).encode())

    def get_version(self, pipeline_id: str, version_id: str) -> dict[str, Any]:
        return self._call("GET", f"/pipelines/{pipeline_id}/versions/{version_id}")

    def list_runs(self, fields: Mapping[str, str]) -> dict[str, Any]:
        return self._call("GET", "/runs", fields=fields)

    def _call(
        self, method: str, path: str, *, body: bytes | None = None, fields: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        url = self._url + path + ("?" + urlencode(fields) if fields else "")
        headers = {"Content-Type": "application/json"}
        response: Any
        if method in REPEATABLE_METHODS:
            response = self._http.request(method, url, headers, body, 35.0)
        else:
            response = self._pool.request(method, url, body=body, headers=headers)
        if response.status != 200:
            raise RuntimeError(f"KFP {method} {path}: HTTP {response.status}: {response.data[:300]!r}")
        return json.loads(response.data)


class Floor:
    def __init__(self, args: argparse.Namespace) -> None:
        self._kube = LimitedKube(KubeHttp(args.kubeconfig), TokenBucket(args.qps, args.burst))
        self._kfp = Kfp(args.kfp, args.workers * 2)
        self._namespace = args.namespace
        self._workers = args.workers
        self._poll_interval = args.poll_interval
        self._provider = args.provider
        self._resolved = Resolved(
            pipeline_id=args.pipeline_id,
            version=PipelineVersion(args.pipeline_id, args.version_id, args.version_name),
            experiment_id=args.experiment_id,
            experiment_name=args.experiment_name,
            parameters={},
            dependencies={},
        )
        self._work: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}  # the floor's own view: what it last wrote or saw
        self._tracked: dict[str, str] = {}  # KFP run id -> Run name, until completed
        self._watermark: datetime | None = None
        self._parameter_types: dict[str, str] = {}
        self._resource_version = ""
        self.stopping = threading.Event()

    def run(self) -> None:
        # The parameter types are read once, not per Run: the pipeline version is fixed.
        version = self._kfp.get_version(self._resolved.pipeline_id, self._resolved.version.version_id)
        self._parameter_types = declared_parameter_types(version.get("pipeline_spec"))
        self._list()
        threads = [threading.Thread(target=self._watch_loop, daemon=True)]
        threads += [threading.Thread(target=self._worker, daemon=True) for _ in range(self._workers)]
        threads.append(threading.Thread(target=self._poll_loop, daemon=True))
        for thread in threads:
            thread.start()
        self.stopping.wait()

    # -- learning about Runs -----------------------------------------------------------------

    def _list(self) -> None:
        page = self._kube.request("GET", runs_path(self._namespace) + "?limit=500")
        assert not page["metadata"].get("continue"), "the floor expects an empty namespace"
        for obj in page.get("items") or []:
            self._saw(obj)
        self._resource_version = page["metadata"]["resourceVersion"]

    def _watch_loop(self) -> None:
        while not self.stopping.is_set():
            query = f"?watch=true&timeoutSeconds={WATCH_TIMEOUT_SECONDS}"
            path = runs_path(self._namespace) + query + f"&resourceVersion={self._resource_version}"
            try:
                for line in self._kube.stream_lines(path, read_timeout=WATCH_TIMEOUT_SECONDS + 30):
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise ApiError("WATCH", path, obj.get("code", 500), line)
                    self._resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        self._saw(obj)
            except Exception as error:  # the stream ended badly: watch again from the last version
                print(f"floor: watch failed: {error}", flush=True)
                self.stopping.wait(0.2)

    def _saw(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if name in self._runs:
                return
            self._runs[name] = obj
        if not (obj.get("status") or {}).get("providerId"):
            self._work.put(("submit", name, None))

    # -- the work ----------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            kind, name, observation = self._work.get()
            try:
                if kind == "submit":
                    self._submit(name)
                else:
                    self._complete(name, observation)
            except Exception as error:
                print(f"floor: {kind} {name} failed: {error}", flush=True)
                self._work.put((kind, name, observation))

    def _submit(self, name: str) -> None:
        with self._lock:
            run = RunView(self._runs[name])
        values = {p.name: p.value for p in run.spec.runtime_parameters if p.value is not None}
        resolved = replace(self._resolved, parameters=convert_values(values, self._parameter_types))
        kfp_run = self._kfp.create_run(self._create_body(run, resolved))
        observation = observation_from(kfp_run)
        desired = run_status.submitted(run, resolved, self._provider, observation, datetime.now(UTC))
        self._write(run, desired)
        with self._lock:
            self._tracked[observation.run_id] = name

    def _complete(self, name: str, observation: KfpRunObservation) -> None:
        with self._lock:
            run = RunView(self._runs[name])
        self._write(run, run_status.completed(run, observation, [], datetime.now(UTC)))

    def _write(self, run: RunView, desired: Mapping[str, Any]) -> None:
        patch = run_status.merge_patch(run.status, desired)
        updated = self._kube.request(
            "PATCH", runs_path(run.namespace, run.name, "status"), {"status": patch}, content_type=MERGE_PATCH
        )
        with self._lock:
            self._runs[run.name] = updated

    def _create_body(self, run: RunView, resolved: Resolved) -> dict[str, Any]:
        # The operator's request with the floor's own marker, so its runs are never taken for the operator's.
        description = f"Run {run.namespaced_name} created by the bench floor. {FLOOR_MARKER}{run.uid}"
        return {**create_run_request(run, resolved), "description": description}

    # -- polling -----------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self.stopping.wait(self._poll_interval):
            try:
                self._poll()
            except Exception as error:
                print(f"floor: poll failed: {error}", flush=True)

    def _poll(self) -> None:
        with self._lock:
            if not self._tracked:
                return
        since = (self._watermark - LOOKBACK) if self._watermark else datetime(1970, 1, 2, tzinfo=UTC)
        predicates = [
            {"key": "finished_at", "operation": "GREATER_THAN_EQUALS", "timestamp_value": format_time(since)},
            {"key": "description", "operation": "IS_SUBSTRING", "string_value": FLOOR_MARKER},
        ]
        token = ""
        while True:
            fields = {"filter": json.dumps({"predicates": predicates}), "page_size": str(PAGE_SIZE)}
            fields.update({"sort_by": "finished_at"} | ({"page_token": token} if token else {}))
            page = self._kfp.list_runs(fields)
            for kfp_run in page.get("runs") or []:
                observation = observation_from(kfp_run)
                if observation.finished_at and (
                    self._watermark is None or observation.finished_at > self._watermark
                ):
                    self._watermark = observation.finished_at
                with self._lock:
                    name = self._tracked.pop(observation.run_id, None) if observation.is_terminal else None
                if name is not None:
                    self._work.put(("complete", name, observation))
            token = page.get("next_page_token") or ""
            if not token:
                return


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--kfp", required=True, help="KFP API base URL")
    parser.add_argument("--pipeline-id", required=True)
    parser.add_argument("--version-id", required=True)
    parser.add_argument("--version-name", required=True)
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--experiment-name", required=True)
    parser.add_argument("--provider", default="kfp")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--poll-interval", type=float, required=True)
    parser.add_argument("--qps", type=float, required=True, help="client-side API QPS; <= 0 disables")
    parser.add_argument("--burst", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    floor = Floor(parse_args(argv))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: floor.stopping.set())
    print("floor: running", flush=True)
    floor.run()


if __name__ == "__main__":
    main()
