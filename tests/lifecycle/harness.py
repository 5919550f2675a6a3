"""The world a lifecycle test runs in: the real operator process, the KFP emulator with its
MLMD service, NATS with JetStream, and the test's own namespace on the real API server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kfp_server_api
import kubernetes
import nats
import pytest
import yaml
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from prometheus_client.parser import text_string_to_metric_families

from kfp_devstack.emulator import Emulator, EmulatorControl
from kfp_devstack.examples import (
    EXAMPLE_GENERATOR,
    EXAMPLE_GENERATOR_VERSION,
    PENGUIN_EXPERIMENT,
    PENGUIN_PIPELINE,
    PENGUIN_VERSION,
    PIPELINES_DIR,
    KfpExamples,
)
from kfp_devstack.processes import free_port
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP, VERSION

EVENTS_STREAM = "EVENTS"

# Runs the test once on a fresh emulator and once on the session's real KFP API server.
on_both_backends = pytest.mark.parametrize("emulator", ["emulator", "real"], indirect=True)
TIMEOUT = 60.0  # generous: the operator, the emulator and the API server share two cores


class PortTaken(Exception):
    """The operator exited because its metrics or health port was taken meanwhile."""


class OperatorProcess:
    """``kfp-operator`` as a child process, with its metrics and health endpoints."""

    def __init__(
        self,
        config: Mapping[str, Any],
        kubeconfig: Path,
        work_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = dict(config)
        self.env = dict(env or {})
        self.kubeconfig = kubeconfig
        self.work_dir = work_dir
        self.config_file = work_dir / f"operator-{uuid.uuid4().hex[:6]}.yaml"
        self.log = self.config_file.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self._choose_ports()

    def _choose_ports(self) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.config["metrics"] = {"bindAddress": f"127.0.0.1:{self.metrics_port}"}
        self.config["health"] = {"bindAddress": f"127.0.0.1:{self.health_port}"}
        self.config_file.write_text(yaml.safe_dump(self.config))

    def start(self) -> OperatorProcess:
        """Starts the operator and waits until it leads. A port found free may be taken by another
        process before the operator binds it; then it starts again on other ports."""
        for _ in range(3):
            try:
                return self._start()
            except PortTaken:
                self._choose_ports()
        return self._start()

    def _start(self) -> OperatorProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kfp_operator",
                    f"--config={self.config_file}",
                    f"--kubeconfig={self.kubeconfig}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        wait_until(
            self._leading, timeout=TIMEOUT, message=lambda: f"the operator to lead; log:\n{self.tail()}"
        )
        return self

    def _leading(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            if "Address already in use" in self.tail(5):
                raise PortTaken()
            raise AssertionError(f"the operator exited with {self.process.returncode}:\n{self.tail()}")
        try:
            return self.metric("leader_election_master_status") == 1 or not self.config.get(
                "leaderElection", {}
            ).get("enabled", True)
        except OSError:
            return False

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=TIMEOUT)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=TIMEOUT)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )

    def exposition(self) -> str:
        """The text of ``/metrics``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        samples = {}
        for family in text_string_to_metric_families(self.exposition()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, lbls), v in self.metrics().items() if n == name and wanted <= lbls)


@contextlib.contextmanager
def world_of(
    namespace: str,
    api_client: kubernetes.client.ApiClient,
    emulator: Emulator,
    nats_url: str,
    kubeconfig: Path,
    work_dir: Path,
    *,
    ca_file: Path | None = None,
) -> Iterator[World]:
    """A test's World; afterwards each operator still running must stop cleanly (SIGTERM, 0)."""
    world = World(namespace, api_client, emulator, nats_url, kubeconfig, work_dir, ca_file=ca_file)
    yield world
    for operator in world.operators:
        if operator.is_running():
            status = operator.stop()
            assert status == 0, f"the operator exited with {status}:\n{operator.tail()}"


@dataclass
class World:
    namespace: str
    api_client: kubernetes.client.ApiClient
    emulator: Emulator
    nats_url: str
    kubeconfig: Path
    work_dir: Path
    operators: list[OperatorProcess] = field(default_factory=list)
    ca_file: Path | None = None  # the CA of an emulator serving TLS

    def __post_init__(self) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)
        self.core = kubernetes.client.CoreV1Api(self.api_client)
        self.ctl = EmulatorControl(self.emulator.url, ca_file=self.ca_file)
        self.examples = KfpExamples(self.emulator.url, ca_file=self.ca_file)
        configuration = kfp_server_api.Configuration(host=self.emulator.url)
        configuration.ssl_ca_cert = str(self.ca_file) if self.ca_file is not None else None
        client = kfp_server_api.ApiClient(configuration)
        self.kfp_runs_api = kfp_server_api.RunServiceApi(client)
        self.pipelines_api = kfp_server_api.PipelineServiceApi(client)
        self.subject = f"events.{self.namespace}"

    # -- the operator ------------------------------------------------------------------------

    def operator_config(self, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "provider": "kfp",
            "defaultExperiment": "Default",
            "kfp": {"endpoint": self.emulator.url},
            "mlmd": {"host": self.emulator.mlmd_host, "port": self.emulator.mlmd_port},
            "events": {"nats": {"url": self.nats_url, "subject": self.subject, "jetstream": True}},
            "pollInterval": "0.5s",
            "safetyCheckInterval": "60s",
            "dependencyRecheckInterval": "1s",
            "watchNamespaces": [self.namespace],
            "leaderElection": {"enabled": True, "namespace": self.namespace, "name": "kfp-operator"},
            "log": {"format": "json", "level": "debug"},
        }
        for key, value in overrides.items():
            config[key] = value
        return config

    def start_operator(
        self, *, kubeconfig: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> OperatorProcess:
        """Starts the operator with the test's configuration and ``overrides`` of its top-level keys,
        as the admin unless another ``kubeconfig`` is given."""
        operator = OperatorProcess(
            self.operator_config(**overrides), kubeconfig or self.kubeconfig, self.work_dir, env=env
        )
        self.operators.append(operator)
        return operator.start()

    # -- KFP ---------------------------------------------------------------------------------

    def upload_penguin(self, version: str = PENGUIN_VERSION, name: str = PENGUIN_PIPELINE) -> Any:
        return self.examples.pipeline(name, version, PIPELINES_DIR / "penguin_pipeline.yaml")

    def next_second(self) -> None:
        """Waits until the wall clock enters a new second: KFP orders versions by their creation
        time, in whole seconds, so a version uploaded in the same second is not "later"."""
        start = int(time.time())
        wait_until(lambda: int(time.time()) > start, timeout=2, interval=0.02, message="the next second")

    def upload_example_generator(self) -> Any:
        return self.examples.pipeline(
            EXAMPLE_GENERATOR, EXAMPLE_GENERATOR_VERSION, PIPELINES_DIR / "example_generator.yaml"
        )

    def create_experiment(self, name: str = PENGUIN_EXPERIMENT) -> str:
        return self.examples.experiment(name)

    def release_held_task(self, run_id: str, task: str) -> None:
        """Lets a task scripted with ``Task(held=True)`` finish, once it has started."""
        self.ctl.wait_for_task(run_id, task, "RUNNING", timeout=TIMEOUT)
        self.ctl.release(run_id, task)

    def kfp_runs(self) -> list[dict[str, Any]]:
        """The KFP runs of this test's Runs (named ``<namespace>/<name>``), also when the KFP API
        server is shared with other tests."""
        runs: list[dict[str, Any]] = []
        token = ""
        while True:
            response = self.kfp_runs_api.run_service_list_runs(
                page_size=200, page_token=token, _preload_content=False
            )
            page = json.loads(response.data)
            runs += [r for r in page.get("runs", []) if r["display_name"].startswith(f"{self.namespace}/")]
            token = page.get("next_page_token", "")
            if not token:
                return runs

    def kfp_run(self, run_id: str) -> dict[str, Any]:
        return json.loads(self.kfp_runs_api.run_service_get_run(run_id, _preload_content=False).data)

    # -- Runs and RunConfigurations ----------------------------------------------------------

    def create_run(
        self,
        spec: Mapping[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> str:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Run",
            "metadata": {
                "generateName": "run-",
                "labels": dict(labels or {}),
                "annotations": dict(annotations or {}),
            },
            "spec": dict(spec),
        }
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "runs", body)[
            "metadata"
        ]["name"]

    def run(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "runs", name)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def status(self, name: str) -> dict[str, Any]:
        return (self.run(name) or {}).get("status") or {}

    def wait_run(
        self, name: str, predicate: Callable[[dict[str, Any]], Any], what: str, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            run = self.run(name)
            status = (run or {}).get("status") or {}
            return status if run is not None and predicate(status) else None

        return wait_until(
            check,
            timeout=timeout,
            message=lambda: (
                f"Run {name} to be {what}; status: {json.dumps(self.status(name), indent=1)}\n"
                f"operator log:\n{self.operators[-1].tail() if self.operators else ''}"
            ),
        )

    def wait_submitted(self, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.wait_run(name, lambda s: s.get("providerId"), "submitted", timeout)

    def wait_completed(self, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.wait_run(name, lambda s: s.get("completionState"), "completed", timeout)

    def wait_gone(self, name: str, timeout: float = TIMEOUT) -> None:
        wait_until(lambda: self.run(name) is None, timeout=timeout, message=f"Run {name} to be deleted")

    def condition(self, name: str, condition_type: str) -> dict[str, Any]:
        for condition in self.status(name).get("conditions") or ():
            if condition["type"] == condition_type:
                return condition
        return {}

    def create_run_configuration(self, name: str, spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RunConfiguration",
            "metadata": {"name": name},
            "spec": dict(spec or {"run": {"pipeline": EXAMPLE_GENERATOR}}),
        }
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "runconfigurations", body
        )

    def set_latest_succeeded(self, name: str, succeeded: Mapping[str, Any]) -> None:
        """Sets a RunConfiguration's latest succeeded run, as whatever runs it would."""
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            "runconfigurations",
            name,
            {"status": {"latestRuns": {"succeeded": dict(succeeded)}}},
        )

    def delete_run_configuration(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "runconfigurations", name)

    def run_configuration(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "runconfigurations", name
        )

    def mlmd(self) -> metadata_store.MetadataStore:
        return metadata_store.MetadataStore(
            metadata_store_pb2.MetadataStoreClientConfig(
                host=self.emulator.mlmd_host, port=self.emulator.mlmd_port
            )
        )

    def events_for(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Kubernetes Events about an object, oldest first."""
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        ordered = sorted(events.items, key=lambda e: (e.first_timestamp or e.event_time, e.metadata.name))
        return [(e.type, e.reason, e.message) for e in ordered]

    def event_reasons(self, name: str) -> list[str]:
        return [reason for _, reason, _ in self.events_for(name)]

    def wait_events(
        self, name: str, check: Callable[[list[tuple[str, str, str]]], bool], what: str
    ) -> list[tuple[str, str, str]]:
        """Waits until the Events about ``name`` pass ``check``: the operator records Events in
        the background, so they may land just after the status change they accompany."""

        def events() -> list[tuple[str, str, str]] | None:
            found = self.events_for(name)
            return found if check(found) else None

        return wait_until(
            events, timeout=TIMEOUT, message=lambda: f"Events of {name}: {what}; have {self.events_for(name)}"
        )

    def wait_event(self, name: str, reason: str) -> None:
        self.wait_events(name, lambda events: reason in [r for _, r, _ in events], f"a {reason} Event")

    # -- NATS --------------------------------------------------------------------------------

    def published_events(self) -> list[dict[str, Any]]:
        """Every run-completion event the stream holds for this test's subject, in order."""
        return asyncio.run(_read_subject(self.nats_url, self.subject))


async def _read_subject(url: str, subject: str) -> list[dict[str, Any]]:
    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        subscription = await jetstream.subscribe(subject, ordered_consumer=True)
        messages = []
        while True:
            try:
                message = await subscription.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            messages.append(json.loads(message.data))
        await subscription.unsubscribe()
        return messages
    finally:
        await client.close()
