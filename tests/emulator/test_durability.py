"""State survives a restart on the same state directory, and runs in progress carry on."""

from __future__ import annotations

from kfp_server_api import V2beta1Experiment

from kfp_devstack.emulator import EmulatorControl, Scenario, Task
from tests.emulator.helpers import UNSPECIFIED, Kfp, connect_mlmd, history_of, unique


def test_objects_and_a_running_run_survive_a_restart(start_emulator, tmp_path):
    state_dir = tmp_path / "durable"
    first = start_emulator(state_dir)
    kfp, ctl = Kfp(first.url), EmulatorControl(first.url)
    pipeline = kfp.upload()
    ctl.script_pipeline(pipeline.name, Scenario(tasks={"Evaluator": Task(seconds=0.5)}))
    experiment = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=unique("e"))
    )
    run = kfp.create_run(pipeline.pipeline_id, experiment_id=experiment.experiment_id)
    ctl.wait_for_task(run.run_id, "Evaluator", "RUNNING")
    first.stop()

    second = start_emulator(state_dir)
    kfp = Kfp(second.url)

    assert kfp.pipelines.pipeline_service_get_pipeline(pipeline.pipeline_id).name == pipeline.name
    assert kfp.pipelines.pipeline_service_list_pipeline_versions(pipeline.pipeline_id).total_size == 1
    assert kfp.experiments.experiment_service_get_experiment(experiment.experiment_id).display_name == (
        experiment.display_name
    )
    finished = kfp.wait_until_finished(run.run_id)
    assert finished.state == "SUCCEEDED"
    assert history_of(finished) == ["PENDING", UNSPECIFIED, "RUNNING", "SUCCEEDED"]

    mlmd = connect_mlmd(second)
    context = mlmd.get_context_by_type_and_name("system.PipelineRun", run.run_id)
    executions = mlmd.get_executions_by_context(context.id)
    assert sorted(e.custom_properties["task_name"].string_value for e in executions) == [
        "",
        "evaluator",
        "pusher",
        "trainer",
    ]


def test_scripts_and_the_default_experiment_survive_a_restart(start_emulator, tmp_path):
    state_dir = tmp_path / "durable"
    first = start_emulator(state_dir)
    EmulatorControl(first.url).script_pipeline("some-pipeline", Scenario(hold_pending=True))
    default_before = Kfp(first.url).experiments.experiment_service_list_experiments().experiments
    first.stop()

    second = start_emulator(state_dir)

    assert EmulatorControl(second.url).scenarios() == {"pipeline:some-pipeline": Scenario(hold_pending=True)}
    default_after = Kfp(second.url).experiments.experiment_service_list_experiments().experiments
    assert [e.experiment_id for e in default_after] == [e.experiment_id for e in default_before]
