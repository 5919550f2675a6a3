"""What runs write to ML Metadata, read over gRPC the way an artifact resolver does (docs/emulator.md §11)."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import ListOptions, OrderByField
from ml_metadata.proto import metadata_store_pb2 as mlpb
from ml_metadata.proto import metadata_store_service_pb2 as spb
from ml_metadata.proto import metadata_store_service_pb2_grpc as sgrpc

from kfp_devstack.emulator import Scenario

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract

PUSHED = [{"pushed": True, "pushed_version": "v7"}, {"pushed": False}]


@pytest.fixture
def finished_run(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(artifacts={"Pusher": {"pushed_model": PUSHED}}))
    run = kfp.create_run(penguin.pipeline_id)
    return kfp.wait_until_finished(run.run_id)


def _run_context(mlmd, run_id):
    return mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)


def _task_execution(mlmd, context, task_name):
    query = ListOptions(
        filter_query=f"custom_properties.task_name.string_value = '{task_name}'", order_by=OrderByField.ID
    )
    return mlmd.get_executions_by_context(context.id, list_options=query)


def _outputs(mlmd, execution, output):
    events = [
        event
        for event in mlmd.get_events_by_execution_ids([execution.id])
        if event.type == mlpb.Event.OUTPUT and event.path.steps[0].key == output
    ]
    assert all(len(event.path.steps) == 1 for event in events)
    artifacts = {a.id: a for a in mlmd.get_artifacts_by_id([e.artifact_id for e in events])}
    return [artifacts[event.artifact_id] for event in sorted(events, key=lambda e: e.artifact_id)]


def test_contexts_are_named_by_pipeline_and_run(mlmd, finished_run):
    run_context = _run_context(mlmd, finished_run.run_id)
    pipeline_context = mlmd.get_context_by_type_and_name("system.Pipeline", "penguin-pipeline")

    assert run_context is not None and pipeline_context is not None
    assert run_context.custom_properties["namespace"].string_value == "kubeflow"
    assert run_context.custom_properties["resource_name"].string_value == "run-resource"
    assert run_context.custom_properties["pipeline_root"].string_value.endswith(
        f"/penguin-pipeline/{finished_run.run_id}"
    )
    assert [c.id for c in mlmd.get_parent_contexts_by_context(run_context.id)] == [pipeline_context.id]


def test_a_run_context_does_not_exist_before_the_run_starts(kfp, penguin, ctl, mlmd):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id)

    assert _run_context(mlmd, run.run_id) is None


def test_the_root_dag_and_one_container_execution_per_task(mlmd, finished_run):
    context = _run_context(mlmd, finished_run.run_id)
    executions = sorted(mlmd.get_executions_by_context(context.id), key=lambda e: e.id)
    [root, *tasks] = executions

    assert (root.type, root.name, root.last_known_state) == (
        "system.DAGExecution",
        f"run/{finished_run.run_id}",
        mlpb.Execution.COMPLETE,
    )
    assert root.custom_properties["task_name"].string_value == ""
    assert dict(root.custom_properties["inputs"].struct_value) == {
        "TRAINING_RUNS": 100,
        "EXAMPLES": "gs://penguin/examples",
    }
    described = [
        (
            e.type,
            e.name,
            e.custom_properties["task_name"].string_value,
            e.custom_properties["display_name"].string_value,
            e.custom_properties["parent_dag_id"].int_value,
            e.last_known_state,
        )
        for e in tasks
    ]
    assert described == [
        ("system.ContainerExecution", "", "trainer", "Trainer", root.id, mlpb.Execution.COMPLETE),
        ("system.ContainerExecution", "", "evaluator", "Evaluator", root.id, mlpb.Execution.COMPLETE),
        ("system.ContainerExecution", "", "pusher", "Pusher", root.id, mlpb.Execution.COMPLETE),
    ]
    assert tasks[0].custom_properties["inputs"].struct_value["training_runs"] == 100
    assert {c.name for c in mlmd.get_contexts_by_execution(tasks[2].id)} == {
        "penguin-pipeline",
        finished_run.run_id,
    }


def test_the_seed_artifact_path_resolves_by_task_name_or_display_name(mlmd, finished_run):
    context = _run_context(mlmd, finished_run.run_id)
    assert _task_execution(mlmd, context, "Pusher") == []  # the task key is the component's name
    [by_key] = _task_execution(mlmd, context, "pusher")
    [by_display_name] = [
        e
        for e in mlmd.get_executions_by_context(context.id)
        if e.custom_properties["display_name"].string_value == "Pusher"
    ]
    assert by_key.id == by_display_name.id

    artifacts = _outputs(mlmd, by_key, "pushed_model")

    assert [a.type for a in artifacts] == ["system.Model", "system.Model"]
    assert [a.state for a in artifacts] == [mlpb.Artifact.LIVE] * 2
    assert [a.custom_properties["pushed"].int_value for a in artifacts] == [1, 0]
    assert [a.custom_properties["display_name"].string_value for a in artifacts] == ["pushed_model"] * 2
    assert artifacts[0].custom_properties["pushed_version"].string_value == "v7"
    assert not artifacts[0].name
    layout = rf".*/penguin-pipeline/{finished_run.run_id}/pusher/[0-9a-f-]{{36}}/pushed_model"
    assert all(re.fullmatch(layout, a.uri) for a in artifacts)
    assert artifacts[0].uri != artifacts[1].uri
    assert all(Path(a.uri).exists() for a in artifacts)


def test_metadata_is_converted_as_the_launcher_converts_it(kfp, penguin, ctl, mlmd):
    metadata = {
        "flag": True,
        "score": 0.93,
        "count": 3,
        "label": "x",
        "tags": ["a", "b"],
        "config": {"k": "v"},
    }
    ctl.script_pipeline(penguin.name, Scenario(artifacts={"trainer": {"model": metadata}}))
    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)
    [trainer] = _task_execution(mlmd, _run_context(mlmd, run.run_id), "trainer")

    [model] = _outputs(mlmd, trainer, "model")

    properties = model.custom_properties
    assert properties["flag"].WhichOneof("value") == "int_value" and properties["flag"].int_value == 1
    assert properties["score"].double_value == 0.93
    assert properties["count"].WhichOneof("value") == "double_value" and properties["count"].double_value == 3
    assert properties["label"].string_value == "x"
    assert list(properties["tags"].struct_value["list"]) == ["a", "b"]
    assert dict(properties["config"].struct_value["struct"]) == {"k": "v"}


def test_every_container_task_publishes_its_executor_logs(mlmd, finished_run):
    context = _run_context(mlmd, finished_run.run_id)

    for task in ("trainer", "evaluator", "pusher"):
        [execution] = _task_execution(mlmd, context, task)
        [logs] = _outputs(mlmd, execution, "executor-logs")
        assert logs.type == "system.Artifact"
        assert Path(logs.uri).read_text().strip()


def test_downstream_tasks_record_their_input_artifacts(mlmd, finished_run):
    context = _run_context(mlmd, finished_run.run_id)
    [trainer] = _task_execution(mlmd, context, "trainer")
    [pusher] = _task_execution(mlmd, context, "pusher")
    [model] = _outputs(mlmd, trainer, "model")

    inputs = {
        event.path.steps[0].key: event.artifact_id
        for event in mlmd.get_events_by_execution_ids([pusher.id])
        if event.type == mlpb.Event.INPUT
    }

    assert set(inputs) == {"model", "blessing"}
    assert inputs["model"] == model.id


def test_artifacts_are_attributed_to_both_contexts(mlmd, finished_run):
    run_context = _run_context(mlmd, finished_run.run_id)
    run_artifacts = {a.id for a in mlmd.get_artifacts_by_context(run_context.id)}
    [pusher] = _task_execution(mlmd, run_context, "pusher")

    pushed = {a.id for a in _outputs(mlmd, pusher, "pushed_model")}

    assert pushed <= run_artifacts


def test_a_failed_task_publishes_only_its_logs(kfp, penguin, ctl, mlmd):
    ctl.script_pipeline(penguin.name, Scenario.failing("Evaluator"))
    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)
    context = _run_context(mlmd, run.run_id)

    [evaluator] = _task_execution(mlmd, context, "evaluator")
    root = mlmd.get_execution_by_type_and_name("system.DAGExecution", f"run/{run.run_id}")

    assert evaluator.last_known_state == mlpb.Execution.FAILED
    keys = {
        e.path.steps[0].key
        for e in mlmd.get_events_by_execution_ids([evaluator.id])
        if e.type == mlpb.Event.OUTPUT
    }
    assert keys == {"executor-logs"}
    assert _task_execution(mlmd, context, "pusher") == []
    assert root.last_known_state == mlpb.Execution.FAILED


def test_a_retried_task_gets_a_new_execution(kfp, penguin, ctl, mlmd):
    ctl.script_pipeline(penguin.name, Scenario.failing("Evaluator"))
    run_id = kfp.create_run(penguin.pipeline_id).run_id
    kfp.wait_until_finished(run_id)
    ctl.script_pipeline(penguin.name, None)

    kfp.runs.run_service_retry_run(run_id)
    kfp.wait_for_state(run_id, ["SUCCEEDED"])

    evaluations = _task_execution(mlmd, _run_context(mlmd, run_id), "evaluator")
    assert [e.last_known_state for e in evaluations] == [mlpb.Execution.FAILED, mlpb.Execution.COMPLETE]
    assert len(_task_execution(mlmd, _run_context(mlmd, run_id), "trainer")) == 1


def test_rpcs_the_store_lacks_answer_unimplemented(emulator):
    with grpc.insecure_channel(f"{emulator.mlmd_host}:{emulator.mlmd_port}") as channel:
        stub = sgrpc.MetadataStoreServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetLineageGraph(spb.GetLineageGraphRequest(), timeout=5)

    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_store_errors_come_back_with_their_codes(mlmd):
    with pytest.raises(mlmd_errors.NotFoundError):
        mlmd.get_context_type("no-such-type")


def test_mlmd_calls_are_counted_by_rpc_name(ctl, mlmd, finished_run):
    ctl.reset_calls()

    context = _run_context(mlmd, finished_run.run_id)
    mlmd.get_executions_by_context(context.id)
    mlmd.get_executions_by_context(context.id)

    assert ctl.mlmd_calls() == {"GetContextByTypeAndName": 1, "GetExecutionsByContext": 2}
