"""Bad input gets a condition, an Event and a bounded number of reconciles: never a hot loop."""

from __future__ import annotations

import time

import pytest

from kfp_devstack.waiting import wait_until
from tests.lifecycle.harness import World

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
}
OBSERVATION_WINDOW = 5.0


def prepare(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()


def reconciles_over_a_window(operator, seconds: float = OBSERVATION_WINDOW) -> float:
    """How many times the run controller reconciled during a fixed observation window."""
    before = operator.metric("controller_runtime_reconcile_total", controller="run")
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, timeout=seconds + 1, interval=0.2, message="the window")
    return operator.metric("controller_runtime_reconcile_total", controller="run") - before


@pytest.mark.parametrize(
    ("change", "reason", "message_part"),
    [
        (
            {"artifacts": [{"name": "model", "path": "Pusher:pushed_model[pushed ==]"}]},
            "InvalidArtifactFilter",
            "artifact model: ",
        ),
        (
            {
                "runtimeParameters": [
                    {"name": "TRAINING_RUNS", "value": "lots"},
                    {"name": "EXAMPLES", "value": "x"},
                ]
            },
            "InvalidParameter",
            "parameter TRAINING_RUNS: 'lots' is not an integer",
        ),
    ],
    ids=["invalid-filter", "mistyped-parameter"],
)
def test_input_that_can_never_run_fails_once_and_stays_quiet(
    world: World, change, reason, message_part
) -> None:
    prepare(world)
    operator = world.start_operator()

    name = world.create_run({**SPEC, **change})

    status = world.wait_run(name, lambda s: s.get("synchronizationState") == "Failed", "failed")
    dependencies = world.condition(name, "DependenciesResolved")
    assert (dependencies["status"], dependencies["reason"]) == ("False", reason)
    assert message_part in dependencies["message"]
    assert world.condition(name, "Synchronized")["status"] == "False"
    world.wait_events(
        name, lambda events: [(t, r) for t, r, _ in events] == [("Warning", reason)], "one Warning"
    )
    assert "providerId" not in status
    assert world.kfp_runs() == []
    # At most the echo of its own status write, then nothing: no retries of what cannot succeed.
    assert reconciles_over_a_window(operator) <= 1
    assert operator.metric("controller_runtime_reconcile_total", controller="run") <= 3
    assert operator.metric("controller_runtime_terminal_reconcile_errors_total", controller="run") == 1


def test_a_parameter_kfp_rejects_fails_with_kfps_message(world: World) -> None:
    prepare(world)
    operator = world.start_operator()

    name = world.create_run(
        {**SPEC, "runtimeParameters": [*SPEC["runtimeParameters"], {"name": "EXTRA", "value": "1"}]}
    )

    world.wait_run(name, lambda s: s.get("synchronizationState") == "Failed", "failed")
    synchronized = world.condition(name, "Synchronized")
    assert synchronized["reason"] == "Failed"
    assert synchronized["message"].startswith("KFP rejected the run: HTTP 400: ")
    assert "EXTRA" in synchronized["message"]
    world.wait_event(name, "SubmissionFailed")
    assert world.kfp_runs() == []
    assert operator.metric("kfp_operator_kfp_requests_total", operation="create_run", code="400") == 1
    assert reconciles_over_a_window(operator) <= 1
    assert operator.metric("controller_runtime_reconcile_total", controller="run") <= 3


def test_an_unknown_pipeline_version_waits_and_is_rechecked_at_a_bounded_rate(world: World) -> None:
    prepare(world)
    operator = world.start_operator(dependencyRecheckInterval="1s")

    name = world.create_run({**SPEC, "pipeline": "penguin-pipeline:v9"})

    world.wait_run(
        name,
        lambda s: any(c["reason"] == "PipelineVersionNotFound" for c in s.get("conditions", ())),
        "waiting",
    )
    world.wait_event(name, "PipelineVersionNotFound")
    # One recheck a second, whatever the window: a timer, not a hot loop.
    assert reconciles_over_a_window(operator) <= OBSERVATION_WINDOW + 2
    # Repeated waits for the same thing do not add Events.
    assert world.event_reasons(name) == ["PipelineVersionNotFound"]
    assert world.kfp_runs() == []
