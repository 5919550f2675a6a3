"""Deleting Runs: active KFP runs are terminated, finished ones left alone, no completion lost, and the
finalizer always released within the deletion timeout."""

from __future__ import annotations

from pathlib import Path

from kfp_devstack.emulator import Fault, Scenario, Task
from kfp_devstack.nats import NatsServer, ensure_stream
from kfp_devstack.waiting import wait_until
from tests.lifecycle.harness import EVENTS_STREAM, GROUP, TIMEOUT, VERSION, World, on_both_backends

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
}


def prepare(world: World, scenario: Scenario | None = None) -> None:
    world.upload_penguin()
    world.create_experiment()
    if scenario is not None:
        world.ctl.script_pipeline("penguin-pipeline", scenario)


def delete(world: World, name: str) -> None:
    world.custom.delete_namespaced_custom_object(GROUP, VERSION, world.namespace, "runs", name)


@on_both_backends
def test_deleting_an_active_run_terminates_it_in_kfp(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    operator = world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")

    delete(world, name)

    world.wait_gone(name)
    wait_until(
        lambda: world.kfp_run(run_id).get("state") == "FAILED", timeout=TIMEOUT, message="KFP to stop the run"
    )
    states = [entry.get("state") for entry in world.kfp_run(run_id)["state_history"]]
    assert states[-2:] == ["CANCELING", "FAILED"]
    world.wait_event(name, "Terminated")
    assert operator.metric("kfp_operator_kfp_terminations_total") == 1
    # The terminated run's completion was recorded and published before the Run went.
    [event] = world.published_events()
    assert (event["data"]["runId"], event["data"]["status"]) == (run_id, "failed")


def test_deleting_a_finished_run_leaves_kfp_alone(world: World) -> None:
    prepare(world)
    operator = world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_completed(name)["providerId"].removeprefix("kfp:")
    world.ctl.reset_calls()

    delete(world, name)

    world.wait_gone(name)
    assert world.kfp_run(run_id)["state"] == "SUCCEEDED"
    assert not any("terminate" in call for call in world.ctl.calls())
    assert operator.metric("kfp_operator_kfp_terminations_total") == 0


def test_deleting_a_run_whose_kfp_run_is_gone_releases_it(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")
    world.kfp_runs_api.run_service_delete_run(run_id)

    delete(world, name)

    world.wait_gone(name)


def test_a_waiting_run_has_no_finalizer_and_deletes_at_once(world: World) -> None:
    world.start_operator()
    name = world.create_run(SPEC)
    world.wait_run(name, lambda s: s.get("synchronizationState") == "Creating", "waiting")
    assert not world.run(name)["metadata"].get("finalizers")

    delete(world, name)

    assert world.run(name) is None


def test_when_kfp_cannot_terminate_the_run_it_is_released_after_the_deletion_timeout(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator(deletionTimeout="2s")
    name = world.create_run(SPEC)
    world.wait_submitted(name)
    world.ctl.inject_fault(Fault.error("POST", "/apis/v2beta1/runs/{run_id}:terminate", 503, times=None))

    delete(world, name)

    world.wait_gone(name)
    world.wait_event(name, "DeletionTimedOut")


def test_a_run_whose_artifacts_wait_for_ml_metadata_is_released_after_the_deletion_timeout(
    world: World,
) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator(deletionTimeout="3s")
    name = world.create_run({**SPEC, "artifacts": [{"name": "model", "path": "Trainer:model"}]})
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")
    world.ctl.mlmd_down()
    world.release_held_task(run_id, "Pusher")
    world.wait_run(
        name,
        lambda s: any(c["reason"] == "MetadataUnavailable" for c in s.get("conditions", ())),
        "waiting for ML Metadata",
    )

    delete(world, name)

    world.wait_gone(name)
    timed_out = world.wait_events(
        name, lambda events: any(r == "DeletionTimedOut" for _, r, _ in events), "DeletionTimedOut"
    )
    [message] = [m for _, r, m in timed_out if r == "DeletionTimedOut"]
    assert "ML Metadata could not be read" in message


def test_a_run_deleted_while_nats_is_down_keeps_its_event_until_it_is_delivered(
    world: World, tmp_path: Path
) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    nats_server = NatsServer(work_dir=tmp_path / "nats")
    nats_server.start()
    ensure_stream(nats_server.url, EVENTS_STREAM, ["events.>"])
    world.nats_url = nats_server.url
    world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")

    nats_server.stop()
    world.release_held_task(run_id, "Pusher")
    wait_until(lambda: world.kfp_run(run_id)["state"] == "SUCCEEDED", timeout=TIMEOUT, message="the KFP run")
    delete(world, name)

    # Held, completed, while the event cannot be delivered.
    held = world.wait_run(
        name,
        lambda s: s.get("completionState") == "Succeeded" and s.get("synchronizationState") == "Deleting",
        "held as Deleting with its completion recorded",
    )
    assert not (held.get("completionEvent") or {}).get("deliveredAt")
    nats_server.start()

    world.wait_gone(name)
    [event] = world.published_events()
    assert (event["data"]["runId"], event["data"]["status"]) == (run_id, "succeeded")
    nats_server.stop()


def test_a_run_deleted_before_the_operator_saw_its_completion_gets_it_recorded_and_delivered(
    world: World,
) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    first = world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")

    first.kill()  # the run finishes, and the Run is deleted, while no operator runs
    world.release_held_task(run_id, "Pusher")
    wait_until(lambda: world.kfp_run(run_id)["state"] == "SUCCEEDED", timeout=TIMEOUT, message="the KFP run")
    delete(world, name)
    assert world.run(name) is not None  # the finalizer holds it
    world.start_operator()

    world.wait_gone(name)
    [event] = world.published_events()
    assert (event["data"]["runId"], event["data"]["status"]) == (run_id, "succeeded")
    assert len(world.kfp_runs()) == 1
