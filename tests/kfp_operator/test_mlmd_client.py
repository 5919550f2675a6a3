"""The ML Metadata client against the local stack's real MLMD store: the records of a finished run,
as the KFP launcher writes them, read through MLMD's gRPC API and turned into plain records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from prometheus_client import CollectorRegistry

from kfp_devstack.emulator import Emulator, EmulatorConfig, EmulatorControl, Scenario
from kfp_devstack.processes import free_port
from kfp_operator.clients.mlmd import PAGE_SIZE, MlmdClient, MlmdMetrics, MlmdUnavailable
from reconcilers.api.run import Artifact, OutputArtifactSpec
from reconcilers.artifacts import records
from reconcilers.artifacts.resolve import read_run_metadata, read_runs_metadata, resolve_artifacts
from tests.emulator.helpers import Kfp, connect_mlmd


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
    EmulatorControl(emulator.url).reset_calls()

    metadata = read_run_metadata(mlmd, run.run_id, {"Pusher"})

    assert EmulatorControl(emulator.url).mlmd_calls() == {
        "GetExecutions": 1,
        "GetEventsByExecutionIDs": 1,
        "GetArtifactsByID": 1,
    }

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


def test_runs_read_together_get_the_records_each_gets_alone(emulator: Emulator) -> None:
    kfp = Kfp(emulator.url)
    pipeline = kfp.upload()
    EmulatorControl(emulator.url).script_pipeline(
        pipeline.display_name,
        Scenario(artifacts={"Pusher": {"pushed_model": [{"pushed": True}, {"pushed": False}]}}),
    )
    runs = [kfp.create_run(pipeline.pipeline_id) for _ in range(3)]
    for run in runs:
        kfp.wait_until_finished(run.run_id)
    mlmd = client(emulator)
    wanted = {run.run_id: {"Pusher", "Trainer"} for run in runs}
    EmulatorControl(emulator.url).reset_calls()

    together = read_runs_metadata(mlmd, wanted)

    assert EmulatorControl(emulator.url).mlmd_calls() == {
        "GetExecutions": 3,
        "GetEventsByExecutionIDs": 1,
        "GetArtifactsByID": 1,
    }
    for run in runs:
        alone = read_run_metadata(mlmd, run.run_id, wanted[run.run_id])
        assert together[run.run_id] == alone
        assert {e.strings["task_name"] for e in alone.executions} == {"pusher", "trainer"}
        assert alone.artifacts, "each run has artifacts of its own"
    artifact_ids = [set(together[run.run_id].artifacts) for run in runs]
    assert not set.intersection(*artifact_ids)


def test_a_run_without_records_has_no_context_and_no_executions(emulator: Emulator) -> None:
    mlmd = client(emulator)

    assert mlmd.get_context_id("system.PipelineRun", "no-such-run") is None
    assert mlmd.get_executions_in_context("system.PipelineRun", "no-such-run") == []


def _run_types(store: metadata_store.MetadataStore) -> tuple[int, int]:
    """The ids of KFP's run context type and container execution type, made if not there yet."""
    try:
        context_type = store.get_context_type("system.PipelineRun").id
    except mlmd_errors.NotFoundError:
        context_type = store.put_context_type(metadata_store_pb2.ContextType(name="system.PipelineRun"))
    try:
        execution_type = store.get_execution_type("system.ContainerExecution").id
    except mlmd_errors.NotFoundError:
        execution_type = store.put_execution_type(
            metadata_store_pb2.ExecutionType(name="system.ContainerExecution")
        )
    return int(context_type), int(execution_type)


def test_a_context_name_is_matched_as_it_is_whatever_its_characters(emulator: Emulator) -> None:
    # The executions of a run are found with a filter query naming its context: a name holding
    # quotes or the query's own syntax must find that context's executions and no other's.
    store = connect_mlmd(emulator)
    context_type, execution_type = _run_types(store)
    names = ["it's", "back\\slash", "x' OR contexts_a.name != '", 'double"quote']
    for name in names:
        execution = metadata_store_pb2.Execution(type_id=execution_type)
        execution.custom_properties["task_name"].string_value = name
        context = metadata_store_pb2.Context(type_id=context_type, name=name)
        store.put_execution(execution, artifact_and_events=[], contexts=[context])
    mlmd = client(emulator)

    for name in names:
        [execution] = mlmd.get_executions_in_context("system.PipelineRun", name)
        assert execution.strings["task_name"] == name


def test_the_executions_of_a_run_are_read_page_by_page(emulator: Emulator) -> None:
    store = connect_mlmd(emulator)
    context_type, execution_type = _run_types(store)
    [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type, name="many-tasks")])
    ids = store.put_executions(
        [metadata_store_pb2.Execution(type_id=execution_type) for _ in range(PAGE_SIZE + 1)]
    )
    store.put_attributions_and_associations(
        [], [metadata_store_pb2.Association(execution_id=i, context_id=context_id) for i in ids]
    )

    executions = client(emulator).get_executions_in_context("system.PipelineRun", "many-tasks")

    assert sorted(e.id for e in executions) == sorted(ids)


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
