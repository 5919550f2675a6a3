"""Scripting what runs do: timings, holds, failures, artifacts, and which script wins."""

from __future__ import annotations

import pytest

from kfp_devstack.emulator import ControlError, Scenario, Task
from tests.emulator.helpers import history_of, raw_call

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract


def test_a_held_pending_run_starts_when_released(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id)
    assert "RUNNING" not in history_of(kfp.wait_until_reported(run.run_id))

    assert ctl.release(run.run_id) == ["pending"]

    assert kfp.wait_until_finished(run.run_id).state == "SUCCEEDED"


def test_a_held_task_keeps_the_run_running_until_released(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(tasks={"Pusher": Task(held=True)}))
    run = kfp.create_run(penguin.pipeline_id)

    held = ctl.wait_for_task(run.run_id, "Pusher", "RUNNING")
    assert held["held"] is True
    kfp.wait_for_state(run.run_id, ["RUNNING"])

    assert ctl.release(run.run_id, "Pusher") == ["pusher"]
    assert kfp.wait_until_finished(run.run_id).state == "SUCCEEDED"


def test_a_held_task_can_be_failed_on_command(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(tasks={"trainer": Task(held=True)}))
    run = kfp.create_run(penguin.pipeline_id)
    ctl.wait_for_task(run.run_id, "trainer", "RUNNING")

    assert ctl.fail(run.run_id, "Trainer") == "trainer"

    assert kfp.wait_until_finished(run.run_id).state == "FAILED"
    assert ctl.run_progress(run.run_id)["tasks"]["evaluator"]["state"] == "WAITING"


def test_a_task_can_be_failed_before_it_starts(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id)

    ctl.fail(run.run_id, "Pusher")
    ctl.release(run.run_id)

    assert kfp.wait_until_finished(run.run_id).state == "FAILED"
    tasks = ctl.run_progress(run.run_id)["tasks"]
    assert [tasks[key]["state"] for key in ("trainer", "evaluator", "pusher")] == [
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
    ]


def test_a_run_script_overrides_the_pipeline_script(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True, tasks={"Pusher": Task(fails=True)}))
    run = kfp.create_run(penguin.pipeline_id)

    ctl.script_run(run.run_id, Scenario(hold_pending=False, tasks={"Pusher": Task(fails=False)}))

    assert kfp.wait_until_finished(run.run_id).state == "SUCCEEDED"


def test_the_default_script_applies_to_every_pipeline(kfp, penguin, ctl):
    ctl.script_default(Scenario(hold_pending=True))

    run = kfp.create_run(penguin.pipeline_id)

    assert "RUNNING" not in history_of(kfp.wait_until_reported(run.run_id))
    ctl.script_default(None)
    assert kfp.wait_until_finished(run.run_id).state == "SUCCEEDED"


def test_an_entry_under_the_task_key_wins_over_the_display_name(kfp, penguin, ctl):
    ctl.script_pipeline(
        penguin.name, Scenario(tasks={"Pusher": Task(fails=True), "pusher": Task(fails=False)})
    )

    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)

    assert run.state == "SUCCEEDED"


def test_an_output_may_produce_no_artifact(kfp, penguin, ctl, mlmd):
    ctl.script_pipeline(penguin.name, Scenario(artifacts={"Pusher": {"pushed_model": []}}))
    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)
    execution_id = ctl.run_progress(run.run_id)["tasks"]["pusher"]["execution_id"]

    keys = [event.path.steps[0].key for event in mlmd.get_events_by_execution_ids([execution_id])]

    assert "pushed_model" not in keys and "executor-logs" in keys


def test_scripted_timings_are_honoured(kfp, penguin, ctl):
    ctl.script_pipeline(
        penguin.name, Scenario(pending_seconds=0.0, task_seconds=0.0, tasks={"Pusher": Task(seconds=1.2)})
    )

    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)

    assert (run.finished_at - run.created_at).total_seconds() >= 1


def test_scripts_are_listed_and_cleared(ctl, penguin):
    scenario = Scenario(
        task_seconds=0.1, artifacts={"Pusher": {"pushed_model": [{"pushed": 1}, {"pushed": 0}]}}
    )
    ctl.script_pipeline(penguin.name, scenario)

    assert ctl.scenarios()[f"pipeline:{penguin.name}"] == scenario
    ctl.script_pipeline(penguin.name, None)
    assert f"pipeline:{penguin.name}" not in ctl.scenarios()


def test_malformed_scenarios_and_unknown_targets_are_refused(emulator, ctl, kfp, penguin):
    bad = raw_call(emulator.url, "PUT", "/emulator/v1/scenarios/default", body={"task_seconds": -1})
    unknown_field = raw_call(emulator.url, "PUT", "/emulator/v1/scenarios/default", body={"colour": "red"})
    assert (bad.status, unknown_field.status) == (400, 400)

    with pytest.raises(ControlError) as unknown_run:
        ctl.script_run("no-such-run", Scenario())
    assert unknown_run.value.status == 404

    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)
    with pytest.raises(ControlError) as unknown_task:
        ctl.release(run.run_id, "NoSuchTask")
    with pytest.raises(ControlError) as finished_task:
        ctl.fail(run.run_id, "Pusher")
    assert (unknown_task.value.status, finished_task.value.status) == (404, 409)


def test_control_calls_are_not_counted_as_kfp_calls(ctl, penguin):
    ctl.reset_calls()

    ctl.script_pipeline(penguin.name, Scenario())
    ctl.scenarios()

    assert ctl.calls() == {}
