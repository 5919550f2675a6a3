"""A converged operator is quiet, and RunConfigurations follow their newest succeeded Run."""

from __future__ import annotations

import time

from kfp_devstack.emulator import Scenario, Task
from kfp_devstack.waiting import wait_until
from reconcilers.api import RUN_CONFIGURATION_LABEL
from tests.lifecycle.harness import World

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
    "artifacts": [{"name": "model", "path": "Trainer:model"}],
}
QUIET_WINDOW = 30.0
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def prepare(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()


def api_writes(operator) -> float:
    return sum(operator.metric("rest_client_requests_total", method=method) for method in WRITES)


def test_after_completion_nothing_is_written_and_kfp_is_not_called(world: World) -> None:
    prepare(world)
    # Without leader election, every write the process makes would be about Runs.
    operator = world.start_operator(leaderElection={"enabled": False}, pollInterval="0.5s")
    names = [world.create_run(SPEC) for _ in range(3)]
    for name in names:
        world.wait_run(name, lambda s: (s.get("completionEvent") or {}).get("deliveredAt"), "delivered")
    versions = {name: world.run(name)["metadata"]["resourceVersion"] for name in names}
    writes, kfp_calls, mlmd_calls = api_writes(operator), world.ctl.calls(), world.ctl.mlmd_calls()

    end = time.monotonic() + QUIET_WINDOW
    wait_until(lambda: time.monotonic() >= end, timeout=QUIET_WINDOW + 1, interval=1, message="the window")

    assert api_writes(operator) == writes
    assert world.ctl.calls() == kfp_calls  # with nothing to track, not even the bulk poll asks KFP
    assert world.ctl.mlmd_calls() == mlmd_calls
    assert {name: world.run(name)["metadata"]["resourceVersion"] for name in names} == versions


def test_a_restart_queues_no_completed_run_to_the_run_or_ttl_controller(world: World) -> None:
    prepare(world)
    first = world.start_operator()
    done = world.create_run(SPEC)
    world.wait_run(done, lambda s: (s.get("completionEvent") or {}).get("deliveredAt"), "delivered")
    assert first.stop() == 0

    second = world.start_operator()
    # The Run cache's gauges are reported once every Run is cached.
    wait_until(
        lambda: second.metric("kfp_operator_runs", phase="succeeded") >= 1,
        timeout=30,
        message="the completed Run to reach the restarted operator's cache",
    )
    assert second.metric("workqueue_adds_total", controller="run") == 0, "nothing to do for a completed Run"
    new = world.create_run(SPEC)
    world.wait_completed(new)
    assert second.metric("workqueue_adds_total", controller="run") >= 1
    # Without a runCompletionTTL neither the listed completed Run nor the one completed since went
    # to the TTL controller (the cache holds both once the gauge counts them).
    wait_until(
        lambda: second.metric("kfp_operator_runs", phase="succeeded") >= 2,
        timeout=30,
        message="the new Run's completion to reach the cache",
    )
    assert second.metric("workqueue_adds_total", controller="run-ttl") == 0


def test_tracking_costs_list_calls_per_poll_not_calls_per_run(world: World) -> None:
    prepare(world)
    world.ctl.script_pipeline("penguin-pipeline", Scenario(tasks={"Pusher": Task(held=True)}))
    operator = world.start_operator(pollInterval="0.5s")
    names = [world.create_run(SPEC) for _ in range(6)]
    for name in names:
        world.wait_submitted(name)

    polls_before = operator.metric("kfp_operator_kfp_requests_total", operation="list_runs")
    gets_before = operator.metric("kfp_operator_kfp_requests_total", operation="get_run")
    end = time.monotonic() + 5
    wait_until(lambda: time.monotonic() >= end, timeout=6, interval=0.5, message="the window")

    polls = operator.metric("kfp_operator_kfp_requests_total", operation="list_runs") - polls_before
    # At most one list per 0.5 s poll for six tracked Runs (fewer when the machine is busy),
    # and no per-Run reads.
    assert 1 <= polls <= 12
    assert operator.metric("kfp_operator_kfp_requests_total", operation="get_run") == gets_before


def test_the_latest_run_is_the_one_that_finished_last(world: World) -> None:
    prepare(world)
    world.create_run_configuration("rc")
    world.ctl.script_pipeline("penguin-pipeline", Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator()
    older = world.create_run(SPEC, labels={RUN_CONFIGURATION_LABEL: "rc"})
    older_id = world.wait_submitted(older)["providerId"].removeprefix("kfp:")
    world.ctl.script_run(older_id, Scenario(tasks={"Pusher": Task(held=True)}))
    world.ctl.script_pipeline("penguin-pipeline", None)
    newer = world.create_run(SPEC, labels={RUN_CONFIGURATION_LABEL: "rc"})
    newer_status = world.wait_completed(newer)
    wait_until(
        lambda: (world.run_configuration("rc").get("status") or {}).get("latestRuns"),
        timeout=30,
        message="the RunConfiguration to record the newer run",
    )
    world.next_second()  # the older run finishes in a later second

    world.release_held_task(older_id, "Pusher")
    world.wait_completed(older)

    # It finished last, so it becomes the latest (the RunConfiguration is updated after the Run).
    wait_until(
        lambda: (
            world.run_configuration("rc")["status"]["latestRuns"]["succeeded"]["providerId"]
            == f"kfp:{older_id}"
        ),
        timeout=30,
        message="the older run, which finished last, to become the latest",
    )
    latest = world.run_configuration("rc")["status"]["latestRuns"]["succeeded"]
    assert latest["runName"] == f"{world.namespace}/{older}"
    assert newer_status["finishedAt"] <= latest["finishedAt"]


def test_a_completion_older_than_the_recorded_latest_run_never_replaces_it(world: World) -> None:
    prepare(world)
    world.create_run_configuration("rc")
    newer = {"providerId": "kfp:newer", "artifacts": [], "finishedAt": "2099-01-01T00:00:00Z"}
    world.set_latest_succeeded("rc", newer)
    world.start_operator()

    name = world.create_run(SPEC, labels={RUN_CONFIGURATION_LABEL: "rc"})

    world.wait_run(name, lambda s: (s.get("completionEvent") or {}).get("deliveredAt"), "delivered")
    assert world.run_configuration("rc")["status"]["latestRuns"]["succeeded"] == newer
