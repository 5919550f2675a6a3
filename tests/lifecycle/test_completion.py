"""Completion: failures, completions the operator missed while down, redelivery, runs gone from KFP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import kubernetes

from kfp_devstack.emulator import Scenario, Task
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP, RUN_CONFIGURATION_LABEL, VERSION
from reconcilers.completion_event.event import event_id
from reconcilers.run.tracking import FINISHED_BATCH
from tests.lifecycle.harness import TIMEOUT, World, on_both_backends

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
    "artifacts": [{"name": "model", "path": "Trainer:model"}],
}


def prepare(world: World, scenario: Scenario | None = None) -> None:
    world.upload_penguin()
    world.create_experiment()
    if scenario is not None:
        world.ctl.script_pipeline("penguin-pipeline", scenario)


def delivered(status: dict) -> bool:
    return bool((status.get("completionEvent") or {}).get("deliveredAt"))


def test_a_failed_run_completes_as_failed_and_leaves_its_run_configuration_alone(world: World) -> None:
    prepare(world, Scenario.failing("Trainer"))
    world.create_run_configuration("rc")
    world.set_latest_succeeded("rc", {"providerId": "kfp:before", "artifacts": []})
    world.start_operator()

    name = world.create_run(SPEC, labels={RUN_CONFIGURATION_LABEL: "rc"})

    status = world.wait_run(name, delivered, "completed and published")
    assert status["completionState"] == "Failed"
    assert "artifacts" not in status
    completed = world.condition(name, "Completed")
    assert (completed["status"], completed["reason"]) == ("True", "Failed")
    [event] = world.published_events()
    assert event["data"]["status"] == "failed"
    assert event["data"]["artifacts"] == []
    assert world.run_configuration("rc")["status"]["latestRuns"]["succeeded"]["providerId"] == "kfp:before"
    world.wait_events(name, lambda events: ("Warning", "Failed") in [(t, r) for t, r, _ in events], "Failed")


@on_both_backends
def test_a_completion_while_the_operator_was_down_is_recorded_after_restart(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    first = world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")
    assert first.stop() == 0

    world.release_held_task(run_id, "Pusher")
    wait_until(
        lambda: world.kfp_run(run_id).get("state") == "SUCCEEDED", timeout=TIMEOUT, message="the KFP run"
    )
    world.start_operator()

    status = world.wait_run(name, delivered, "completed and published")
    assert status["completionState"] == "Succeeded"
    assert status["artifacts"][0]["name"] == "model"
    uid = world.run(name)["metadata"]["uid"]
    assert [e["id"] for e in world.published_events()] == [event_id(uid, run_id)]


def test_the_event_is_recorded_in_the_same_write_as_the_completion(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")
    submitted_version = world.run(name)["metadata"]["resourceVersion"]

    world.release_held_task(run_id, "Pusher")
    world.wait_run(name, delivered, "completed and published")

    # Every version of the Run since its submission, replayed by a watch from that version.
    versions = [
        event["object"]["status"]
        for event in kubernetes.watch.Watch().stream(
            world.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            world.namespace,
            "runs",
            field_selector=f"metadata.name={name}",
            resource_version=submitted_version,
            timeout_seconds=1,
        )
    ]
    completed = [status for status in versions if status.get("completionState")]
    assert completed, "the watch saw the completion"
    assert delivered(completed[0]), "no version is completed with its event still to deliver"
    [event] = world.published_events()
    assert event["id"] == completed[0]["completionEvent"]["id"]


def test_a_redelivered_event_carries_the_same_id(world: World) -> None:
    prepare(world)
    operator = world.start_operator(
        events={"nats": {"url": world.nats_url, "subject": world.subject, "jetstream": False}}
    )
    name = world.create_run(SPEC)
    world.wait_run(name, delivered, "published")

    # As after a crash between publishing and recording it: the event goes out again.
    world.custom.patch_namespaced_custom_object_status(
        "pipelines.kubeflow.org",
        "v1alpha5",
        world.namespace,
        "runs",
        name,
        {"status": {"completionEvent": None}},
    )
    world.wait_run(name, delivered, "published again")

    first, second = world.published_events()
    assert first == second
    assert operator.metric("kfp_operator_event_deliveries_total", sink="nats", result="delivered") == 2


def test_a_run_that_disappears_from_kfp_completes_as_failed(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator(safetyCheckInterval="1s")
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")

    world.kfp_runs_api.run_service_delete_run(run_id)

    status = world.wait_completed(name)
    assert status["completionState"] == "Failed"
    assert "no longer exists" in world.condition(name, "Completed")["message"]
    world.wait_event(name, "RunVanished")


def test_running_is_reported_by_the_safety_check(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator(safetyCheckInterval="1s")
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")

    world.wait_run(name, lambda s: any(c["reason"] == "Running" for c in s.get("conditions", ())), "running")

    world.release_held_task(run_id, "Pusher")
    assert world.wait_completed(name)["completionState"] == "Succeeded"


def test_a_completion_waits_for_ml_metadata_when_it_is_unavailable(world: World) -> None:
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    operator = world.start_operator()
    name = world.create_run(SPEC)
    run_id = world.wait_submitted(name)["providerId"].removeprefix("kfp:")
    world.ctl.mlmd_down()

    world.release_held_task(run_id, "Pusher")
    wait_until(
        lambda: operator.metric("kfp_operator_mlmd_requests_total", code="UNAVAILABLE") >= 2,
        timeout=TIMEOUT,
        message="the operator to try ML Metadata",
    )
    assert not world.status(name).get("completionState")
    waiting = world.wait_run(
        name,
        lambda s: any(c["reason"] == "MetadataUnavailable" for c in s.get("conditions", ())),
        "saying that it waits for ML Metadata",
    )
    [completed] = [c for c in waiting["conditions"] if c["type"] == "Completed"]
    assert completed["status"] == "False" and "UNAVAILABLE" in completed["message"]
    world.wait_event(name, "MetadataUnavailable")

    world.ctl.mlmd_up()
    status = world.wait_completed(name)
    assert status["artifacts"][0]["name"] == "model"


def test_more_runs_than_one_page_finishing_between_two_polls_are_all_completed_by_the_poll(
    world: World,
) -> None:
    # KFP answers at most 200 runs a page; the operator must follow the page token (alone, as
    # the real server refuses it with the filter again) rather than leave the rest to the
    # safety check, which here would not come for ten minutes.
    count = 210
    prepare(world, Scenario(tasks={"Pusher": Task(held=True)}))
    operator = world.start_operator(pollInterval="20s", safetyCheckInterval="10m", workers=8)
    names = [world.create_run(SPEC) for _ in range(count)]
    run_ids = [world.wait_submitted(name)["providerId"].removeprefix("kfp:") for name in names]
    for run_id in run_ids:
        world.ctl.wait_for_task(run_id, "Pusher", "RUNNING", timeout=TIMEOUT)

    # Right after a poll, so that all of them finish before the next one.
    polls = operator.metric("kfp_operator_kfp_requests_total", operation="list_runs")
    wait_until(
        lambda: operator.metric("kfp_operator_kfp_requests_total", operation="list_runs") > polls,
        timeout=TIMEOUT,
        message="a poll",
    )
    lists_before = operator.metric("kfp_operator_kfp_requests_total", operation="list_runs")
    reads_before = operator.metric("kfp_operator_kfp_requests_total", operation="get_run")
    mlmd_before = world.ctl.mlmd_calls()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda run_id: world.ctl.release(run_id, "Pusher"), run_ids))

    for name in names:
        assert world.wait_completed(name)["completionState"] == "Succeeded"
    assert operator.metric("kfp_operator_kfp_requests_total", operation="get_run") == reads_before
    assert operator.metric("kfp_operator_kfp_requests_total", operation="list_runs") >= lists_before + 2
    assert operator.metric("kfp_operator_kfp_requests_total", operation="list_runs", code="400") == 0
    # Their ML Metadata records were read a batch at a time, the batches the poll handed over:
    # one call per run for its executions, one per batch for the events and one for the
    # artifacts; no Run read its own.
    mlmd = {rpc: n - mlmd_before.get(rpc, 0) for rpc, n in world.ctl.mlmd_calls().items()}
    assert mlmd["GetExecutions"] == count
    assert 0 < mlmd["GetEventsByExecutionIDs"] <= count / FINISHED_BATCH + 2
    assert 0 < mlmd["GetArtifactsByID"] <= count / FINISHED_BATCH + 2
