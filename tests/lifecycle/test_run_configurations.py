"""RunConfigurations against the real control plane and the emulator: schedules, change triggers and
upstream triggers each create exactly one Run per cause; history, deletion and bad input."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from kfp_devstack.emulator import Scenario, Task
from kfp_devstack.examples import EXAMPLE_GENERATOR
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP, RUN_CONFIGURATION_LABEL, VERSION
from reconcilers.api.runconfiguration import RunConfigurationView
from reconcilers.runconfiguration.triggers import (
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_TYPE_LABEL,
    Cause,
    build_run,
)
from tests.lifecycle.harness import TIMEOUT, World

EVERY_2S = "*/2 * * * * *"  # six fields: seconds first
PENGUIN_RUN = {
    "pipeline": "penguin-pipeline",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
}


def generator_run(world: World) -> dict[str, Any]:
    world.upload_example_generator()
    return {"pipeline": EXAMPLE_GENERATOR, "artifacts": [{"name": "examples", "path": "ExampleGen:examples"}]}


def runs_of(world: World, rc: str) -> list[dict[str, Any]]:
    return world.custom.list_namespaced_custom_object(
        GROUP, VERSION, world.namespace, "runs", label_selector=f"{RUN_CONFIGURATION_LABEL}={rc}"
    )["items"]


def wait_runs(world: World, rc: str, count: int, what: str = "") -> list[dict[str, Any]]:
    return wait_until(
        lambda: (runs := runs_of(world, rc)) and len(runs) >= count and runs,
        timeout=TIMEOUT,
        message=lambda: (
            f"{count} Runs of {rc} {what}; have {[r['metadata']['name'] for r in runs_of(world, rc)]}"
        ),
    )


def scheduled_times(runs: list[dict[str, Any]]) -> list[str]:
    return sorted(r["metadata"]["annotations"][SCHEDULED_TIME_ANNOTATION] for r in runs)


def rc_status(world: World, rc: str) -> dict[str, Any]:
    return world.run_configuration(rc).get("status") or {}


def test_a_schedule_creates_one_run_per_tick(world: World) -> None:
    world.create_run_configuration(
        "gen", {"run": generator_run(world), "triggers": {"schedules": [EVERY_2S]}}
    )
    world.start_operator()

    runs = wait_runs(world, "gen", 3, "one per tick")

    ticks = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in scheduled_times(runs)]
    assert len(set(ticks)) == len(ticks) == len(runs)  # never two Runs for one tick
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(ticks))
    assert all(r["metadata"]["labels"][TRIGGER_TYPE_LABEL] == "schedule" for r in runs)
    status = rc_status(world, "gen")
    assert status["synchronizationState"] == "Succeeded"
    assert status["nextScheduleTime"] > status["lastScheduleTime"]


def test_after_downtime_one_catch_up_run_is_created_for_the_latest_missed_tick(world: World) -> None:
    world.create_run_configuration(
        "gen", {"run": generator_run(world), "triggers": {"schedules": [EVERY_2S]}}
    )
    first = world.start_operator()
    wait_runs(world, "gen", 1)
    first.stop()
    before = scheduled_times(runs_of(world, "gen"))
    stopped_at = datetime.now(UTC)
    # Down long enough for at least three ticks to pass.
    wait_until(
        lambda: datetime.now(UTC) >= stopped_at + timedelta(seconds=7),
        timeout=10,
        interval=0.2,
        message="downtime",
    )

    second = world.start_operator()

    after = wait_runs(world, "gen", len(before) + 1, "after the restart")
    caught_up = min(set(scheduled_times(after)) - set(before))
    missed_from, missed_to = before[-1], caught_up
    # No Run for the ticks missed in between: only the latest was caught up.
    assert not [t for t in scheduled_times(after) if missed_from < t < missed_to]
    assert datetime.fromisoformat(caught_up.replace("Z", "+00:00")) >= stopped_at + timedelta(seconds=5)
    assert second.metric("kfp_operator_schedule_ticks_missed_total", reason="downtime") >= 2


def test_forbid_skips_ticks_while_a_scheduled_run_is_active(world: World) -> None:
    world.ctl.script_pipeline(EXAMPLE_GENERATOR, Scenario(tasks={"ExampleGen": Task(held=True)}))
    world.create_run_configuration(
        "gen",
        {
            "run": generator_run(world),
            "triggers": {"schedules": [EVERY_2S]},
            "schedulePolicy": {"concurrencyPolicy": "Forbid"},
        },
    )
    operator = world.start_operator()

    wait_until(
        lambda: operator.metric("kfp_operator_schedule_ticks_missed_total", reason="concurrency") >= 2,
        timeout=TIMEOUT,
        message="two ticks skipped",
    )

    assert len(runs_of(world, "gen")) == 1
    assert "ScheduleSkipped" in world.event_reasons("gen")


def test_a_new_pipeline_version_creates_exactly_one_run(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    world.create_run_configuration("train", {"run": PENGUIN_RUN, "triggers": {"onChange": ["pipeline"]}})
    world.start_operator()
    [first] = wait_runs(world, "train", 1, "for the version at creation")
    assert first["spec"]["pipeline"] == "penguin-pipeline:v1-abcdef"

    world.next_second()
    world.upload_penguin(version="v2")

    wait_until(
        lambda: rc_status(world, "train").get("triggeredPipelineVersion") == "v2",
        timeout=TIMEOUT,
        message="the new version to be triggered",
    )
    pipelines = sorted(r["spec"]["pipeline"] for r in runs_of(world, "train"))
    assert pipelines == ["penguin-pipeline:v1-abcdef", "penguin-pipeline:v2"]
    assert "RunCreated" in world.event_reasons("train")


def test_a_change_of_the_run_spec_creates_exactly_one_run(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    world.create_run_configuration("train", {"run": PENGUIN_RUN, "triggers": {"onChange": ["runSpec"]}})
    world.start_operator()
    wait_runs(world, "train", 1)
    version = wait_until(
        lambda: rc_status(world, "train").get("triggers", {}).get("runSpec", {}).get("version"),
        timeout=TIMEOUT,
        message="the run spec to be recorded",
    )

    changed = {
        **PENGUIN_RUN,
        "runtimeParameters": [
            {"name": "TRAINING_RUNS", "value": "5"},
            {"name": "EXAMPLES", "value": "s3://e"},
        ],
    }
    world.custom.patch_namespaced_custom_object(
        GROUP, VERSION, world.namespace, "runconfigurations", "train", {"spec": {"run": changed}}
    )

    wait_until(
        lambda: rc_status(world, "train")["triggers"]["runSpec"]["version"] != version,
        timeout=TIMEOUT,
        message="the changed run spec to be triggered",
    )
    values = sorted(r["spec"]["runtimeParameters"][0]["value"] for r in runs_of(world, "train"))
    assert values == ["3", "5"]


def test_an_upstream_success_creates_exactly_one_downstream_run_with_its_artifact(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    world.create_run_configuration(
        "gen", {"run": generator_run(world), "triggers": {"onChange": ["runSpec"]}}
    )
    downstream_run = {
        **PENGUIN_RUN,
        "runtimeParameters": [
            {"name": "TRAINING_RUNS", "value": "3"},
            {
                "name": "EXAMPLES",
                "valueFrom": {"runConfigurationRef": {"name": "gen", "outputArtifact": "examples"}},
            },
        ],
    }
    world.create_run_configuration(
        "train", {"run": downstream_run, "triggers": {"runConfigurations": ["gen"]}}
    )
    world.start_operator()

    [upstream] = wait_runs(world, "gen", 1)
    world.wait_completed(upstream["metadata"]["name"])
    [downstream] = wait_runs(world, "train", 1, "after the upstream success")
    status = world.wait_completed(downstream["metadata"]["name"])

    latest = rc_status(world, "gen")["latestRuns"]["succeeded"]
    [examples] = [a["location"] for a in latest["artifacts"] if a["name"] == "examples"]
    kfp_run = world.kfp_run(status["providerId"].removeprefix("kfp:"))
    assert kfp_run["runtime_config"]["parameters"]["EXAMPLES"] == examples
    assert downstream["metadata"]["labels"][TRIGGER_TYPE_LABEL] == "runConfiguration"
    wait_until(
        lambda: rc_status(world, "train").get("triggers", {}).get("runConfigurations", {}).get("gen"),
        timeout=TIMEOUT,
        message="the upstream run to be recorded as triggered",
    )
    assert len(runs_of(world, "train")) == 1


def test_a_run_created_before_a_crash_is_found_instead_of_created_again(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    rc = world.create_run_configuration("train", {"run": PENGUIN_RUN, "triggers": {"onChange": ["pipeline"]}})
    # What the operator had created when it was killed, before it recorded the trigger.
    created = build_run(
        RunConfigurationView(rc), [Cause("onChangePipeline", "penguin-pipeline", "v1-abcdef")], "v1-abcdef"
    )
    world.custom.create_namespaced_custom_object(GROUP, VERSION, world.namespace, "runs", created)

    operator = world.start_operator()

    wait_until(
        lambda: rc_status(world, "train").get("triggeredPipelineVersion") == "v1-abcdef",
        timeout=TIMEOUT,
        message="the trigger to be recorded",
    )
    assert [r["metadata"]["name"] for r in runs_of(world, "train")] == [created["metadata"]["name"]]
    assert (
        operator.metric("kfp_operator_runconfiguration_runs_created_total", trigger="onChangePipeline") == 0
    )


def test_history_limits_delete_the_oldest_completed_runs(world: World) -> None:
    world.create_run_configuration(
        "gen",
        {"run": generator_run(world), "triggers": {"schedules": [EVERY_2S]}, "successfulRunsHistoryLimit": 1},
    )
    operator = world.start_operator()

    wait_until(
        lambda: operator.metric("kfp_operator_runconfiguration_runs_created_total", trigger="schedule") >= 4,
        timeout=TIMEOUT,
        message="four scheduled Runs",
    )
    wait_until(
        lambda: (
            len(
                [
                    r
                    for r in runs_of(world, "gen")
                    if (r.get("status") or {}).get("completionState") == "Succeeded"
                ]
            )
            <= 1
        ),
        timeout=TIMEOUT,
        message="the older succeeded Runs to be deleted",
    )


def test_a_deleted_run_configuration_takes_its_runs_with_it(world: World) -> None:
    world.create_run_configuration(
        "gen", {"run": generator_run(world), "triggers": {"onChange": ["runSpec"]}}
    )
    world.start_operator()
    [created] = wait_runs(world, "gen", 1)

    world.delete_run_configuration("gen")

    world.wait_gone(created["metadata"]["name"])


def test_a_schedule_that_cannot_fire_is_reported(world: World) -> None:
    world.create_run_configuration(
        "gen", {"run": generator_run(world), "triggers": {"schedules": ["0 0 31 2 *"]}}
    )
    world.start_operator()

    wait_until(
        lambda: rc_status(world, "gen").get("synchronizationState") == "Failed",
        timeout=TIMEOUT,
        message="the RunConfiguration to fail",
    )
    [synchronized] = [c for c in rc_status(world, "gen")["conditions"] if c["type"] == "Synchronized"]
    assert (synchronized["status"], synchronized["reason"]) == ("False", "InvalidSchedule")
    world.wait_event("gen", "InvalidSchedule")
    assert runs_of(world, "gen") == []
