"""The peer: the floor's behaviour written as a kopf operator, as a Python team would write it.

``python -m bench.kopf_peer --kubeconfig K --namespace NS --kfp URL ... --counts FILE`` runs
until SIGTERM. It does what the floor does (``bench.floor``), the kopf way:

* ``@kopf.on.create`` for Runs without ``status.providerId``: one KFP ``POST /runs`` (ids given,
  no lookups) and the operator's own submitted status, returned to kopf as a patch (kopf writes
  it together with its own bookkeeping);
* a thread started ``@kopf.on.startup`` makes the bulk poll every poll interval (as the floor:
  a ``GET /runs`` per 200 runs finished since the last poll) and writes each finished Run's
  completed status with one status patch.

kopf's defaults stand, except: Kubernetes Events about handlers are not posted (the floor
posts none), the sync handlers' thread pool has the operator's ``workers`` threads, and the
operator runs standalone in one namespace (no peering). kopf keeps its progress and its last
handled state in annotations of each Run, as it does by default.

Every API server request (kopf's over aiohttp, the poll's over libcurl) is counted by method,
and the counts written to ``--counts`` as JSON twice a second: the bench reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import kopf

from bench.floor import Floor, LimitedKube
from bench.floor import parse_args as floor_args
from reconcilers.api import GROUP, VERSION
from reconcilers.api.run import RunView
from reconcilers.run import status as run_status
from reconcilers.run.parameters import convert_values, declared_parameter_types
from reconcilers.run.tracking import observation_from

REQUESTS: Counter[str] = Counter()
_lock = threading.Lock()


def _count(method: str) -> None:
    with _lock:
        REQUESTS[method.upper()] += 1


def _count_aiohttp() -> None:
    original = aiohttp.ClientSession._request

    async def counted(self: aiohttp.ClientSession, method: str, *args: Any, **kwargs: Any) -> Any:
        _count(method)
        return await original(self, method, *args, **kwargs)

    aiohttp.ClientSession._request = counted  # type: ignore[method-assign]


class CountingKube(LimitedKube):
    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        _count(method)
        return super().request(method, path, body, **kwargs)


class Peer(Floor):
    """The floor's KFP client, status computation and bulk poll; kopf in place of its watch and workers."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self._kube = CountingKube(self._kube._kube, self._kube._limiter)

    def start(self) -> None:
        version = self._kfp.get_version(self._resolved.pipeline_id, self._resolved.version.version_id)
        self._parameter_types = declared_parameter_types(version.get("pipeline_spec"))
        threading.Thread(target=self._poll_loop, daemon=True).start()
        for _ in range(self._workers):
            threading.Thread(target=self._complete_loop, daemon=True).start()

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Creates the KFP run; returns the status patch for kopf to write."""
        run = RunView(body)
        values = {p.name: p.value for p in run.spec.runtime_parameters if p.value is not None}
        resolved = replace(self._resolved, parameters=convert_values(values, self._parameter_types))
        observation = observation_from(self._kfp.create_run(self._create_body(run, resolved)))
        desired = run_status.submitted(run, resolved, self._provider, observation, datetime.now(UTC))
        with self._lock:
            self._runs[run.name] = {**body, "status": desired}
            self._tracked[observation.run_id] = run.name
        return run_status.merge_patch(run.status, desired)

    def _complete_loop(self) -> None:
        # The poll queues ("complete", name, observation); as many threads as the floor's
        # workers write them.
        while True:
            kind, name, observation = self._work.get()
            try:
                self._complete(name, observation)
            except Exception as error:
                print(f"kopf peer: {kind} {name} failed: {error}", flush=True)
                self._work.put((kind, name, observation))


def _plain(value: Any) -> Any:
    """kopf's read-only views of the body, as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Path]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--counts", type=Path, required=True)
    known, rest = parser.parse_known_args(argv)
    return floor_args(rest), known.counts


def main(argv: list[str] | None = None) -> None:
    args, counts_file = parse_args(argv)
    os.environ["KUBECONFIG"] = str(args.kubeconfig)
    _count_aiohttp()
    peer = Peer(args)
    stop = threading.Event()

    def write_counts() -> None:
        # Replaced whole, never rewritten in place: a reader must not see an emptied file
        # (the bench would take it for a change and wait for quiet again).
        partial = counts_file.with_suffix(".partial")
        while not stop.wait(0.5):
            with _lock:
                text = json.dumps(dict(REQUESTS))
            partial.write_text(text)
            partial.replace(counts_file)

    @kopf.on.login()  # type: ignore[arg-type]
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup()  # type: ignore[arg-type]
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.execution.max_workers = args.workers
        peer.start()
        threading.Thread(target=write_counts, daemon=True).start()
        print("kopf peer: running", flush=True)

    @kopf.on.create(GROUP, VERSION, "runs", when=lambda status, **_: not status.get("providerId"))  # type: ignore[arg-type]
    def create(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        patch["status"] = peer.submit(_plain(body))

    kopf.configure(verbose=False)
    kopf.run(standalone=True, namespaces=[args.namespace], clusterwide=False)


if __name__ == "__main__":
    main()
