"""The ML Metadata client against the local stack's real MLMD store: the records of a finished run,
as the KFP launcher writes them, read through MLMD's gRPC API and turned into plain records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kfp_devstack.emulator import Emulator, EmulatorConfig, EmulatorControl, Scenario
from kfp_devstack.processes import free_port
from kfp_operator.clients.mlmd import MlmdClient, MlmdMetrics, MlmdUnavailable
from reconcilers.api.run import Artifact, OutputArtifactSpec
from reconcilers.artifacts import records
from reconcilers.artifacts.resolve import read_run_metadata, resolve_artifacts
from tests.emulator.helpers import Kfp


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(state_dir=tmp_path_factory.mktemp("kfp"), pending_seconds=0.05, task_seconds=0.05)
    with Emulator(config) as running:
        yield running


def client(emulator: Emulator, registry: CollectorRegistry | None = None) -> MlmdClient:
    return MlmdClient(emulator.mlmd_host, emulator.mlmd_port, MlmdMetrics(registry or CollectorRegistry()))


def test_a_finished_runs_records_are_read_and_its_artifacts_resolved(emulator: Emulator) -> None:
    kfp = Kfp(emulator.url)
    pipeline = kfp.upload()
    EmulatorControl(emulator.url).script_pipeline(
        pipeline.display_name,
        Scenario(artifacts={"Pusher": {"pushed_model": [{"pushed": True}, {"pushed": False}]}}),
    )
    run = kfp.create_run(pipeline.pipeline_id)
    kfp.wait_until_finished(run.run_id)
    mlmd = client(emulator)

    metadata = read_run_metadata(mlmd, run.run_id, {"Pusher"})

    [pusher] = metadata.executions
    assert (pusher.type, pusher.state) == ("system.ContainerExecution", records.COMPLETE)
    assert (pusher.strings["task_name"], pusher.strings["display_name"]) == ("pusher", "Pusher")
    outputs = [e for e in metadata.events if e.path[:1] == ("pushed_model",)]
    assert len(outputs) == 2 and all(e.type == records.OUTPUT for e in outputs)
    pushed = [metadata.artifacts[e.artifact_id] for e in outputs]
    assert [a.properties.get("pushed") for a in pushed] == [1.0, 0.0]  # KFP's booleans, as filters see them
    assert all(a.state == records.LIVE and a.uri for a in pushed)
    found, unresolved = resolve_artifacts(
        [OutputArtifactSpec("model", "Pusher:pushed_model:0[pushed == 1]")], metadata
    )
    assert found == [Artifact("model", pushed[0].uri)] and unresolved == []


def test_a_run_without_records_has_no_context(emulator: Emulator) -> None:
    assert client(emulator).get_context_id("system.PipelineRun", "no-such-run") is None


def test_an_unreachable_store_is_reported_and_counted(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    mlmd = MlmdClient("127.0.0.1", free_port(), MlmdMetrics(registry), timeout=2.0)

    with pytest.raises(MlmdUnavailable, match="UNAVAILABLE"):
        mlmd.get_context_id("system.PipelineRun", "r")

    assert (
        registry.get_sample_value(
            "kfp_operator_mlmd_requests_total", {"rpc": "GetContextByTypeAndName", "code": "UNAVAILABLE"}
        )
        == 1
    )
