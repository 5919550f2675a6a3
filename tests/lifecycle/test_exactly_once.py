"""One KFP run per Run, whatever fails: a crash between create and status write, a lost response,
KFP answering 503, a restart of the operator."""

from __future__ import annotations

from kfp_devstack.emulator import Fault
from kfp_devstack.waiting import wait_until
from tests.lifecycle.harness import TIMEOUT, World, on_both_backends

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
}
CREATE_RUN = ("POST", "/apis/v2beta1/runs")


def prepare(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()


def test_a_crash_between_create_and_status_write_is_adopted_after_restart(world: World) -> None:
    prepare(world)
    # The run is committed, then the response is held back until the operator is gone.
    world.ctl.inject_fault(Fault.drop_response(*CREATE_RUN, hold_seconds=30))
    first = world.start_operator()
    name = world.create_run(SPEC)
    wait_until(lambda: len(world.kfp_runs()) == 1, timeout=TIMEOUT, message="the KFP run to be created")
    assert not world.status(name).get("providerId")

    first.kill()
    world.ctl.clear_faults()
    second = world.start_operator()

    status = world.wait_completed(name)
    [kfp_run] = world.kfp_runs()
    assert status["providerId"] == f"kfp:{kfp_run['run_id']}"
    assert second.metric("kfp_operator_run_submissions_total", result="adopted") == 1
    assert second.metric("kfp_operator_run_submissions_total", result="created") == 0


@on_both_backends
def test_a_create_whose_response_is_lost_is_found_by_its_marker(world: World) -> None:
    prepare(world)
    world.ctl.inject_fault(Fault.drop_response(*CREATE_RUN, times=1))
    operator = world.start_operator()

    name = world.create_run(SPEC)

    status = world.wait_completed(name)
    [kfp_run] = world.kfp_runs()
    assert status["providerId"] == f"kfp:{kfp_run['run_id']}"
    assert operator.metric("kfp_operator_run_submissions_total", result="adopted") == 1
    assert operator.metric("kfp_operator_kfp_requests_total", operation="create_run") == 1


def test_kfp_unavailable_for_a_while_then_recovering_yields_one_run(world: World) -> None:
    prepare(world)
    world.ctl.inject_fault(Fault.error(*CREATE_RUN, 503, times=3))
    operator = world.start_operator()

    name = world.create_run(SPEC)

    status = world.wait_completed(name)
    assert len(world.kfp_runs()) == 1
    assert status["completionState"] == "Succeeded"
    assert operator.metric("kfp_operator_kfp_requests_total", operation="create_run", code="503") == 3
    assert operator.metric("kfp_operator_run_submissions_total", result="created") == 1


def test_a_restart_after_submission_does_not_submit_again(world: World) -> None:
    prepare(world)
    first = world.start_operator()
    names = [world.create_run(SPEC) for _ in range(3)]
    for name in names:
        world.wait_submitted(name)
    assert first.stop() == 0

    second = world.start_operator()

    for name in names:
        world.wait_completed(name)
    assert len(world.kfp_runs()) == 3
    assert second.metric("kfp_operator_kfp_requests_total", operation="create_run") == 0


def test_many_runs_at_once_get_one_kfp_run_each(world: World) -> None:
    prepare(world)
    world.start_operator(workers=4)

    names = [world.create_run(SPEC) for _ in range(12)]

    provider_ids = {world.wait_completed(name)["providerId"] for name in names}
    assert len(provider_ids) == 12
    assert len(world.kfp_runs()) == 12


def test_a_lost_create_is_adopted_as_submitted_even_if_resolving_again_would_differ(world: World) -> None:
    """Between the lost response and the retry, the pipeline gets a newer version and the
    RunConfiguration the parameter came from is deleted: resolving again would pick another
    version, or wait forever. The Run adopts its KFP run and records what that run used."""
    prepare(world)
    world.create_run_configuration("generator")
    world.set_latest_succeeded(
        "generator", {"providerId": "kfp:up", "artifacts": [{"name": "examples", "location": "gs://first"}]}
    )
    # The create commits; its answer is held back while the world changes, then the connection resets.
    world.ctl.inject_fault(Fault.drop_response(*CREATE_RUN, hold_seconds=8))
    operator = world.start_operator()
    name = world.create_run(
        {
            "pipeline": "penguin-pipeline",
            "experimentName": "penguin-experiment",
            "runtimeParameters": [
                {"name": "TRAINING_RUNS", "value": "3"},
                {
                    "name": "EXAMPLES",
                    "valueFrom": {"runConfigurationRef": {"name": "generator", "outputArtifact": "examples"}},
                },
            ],
        }
    )
    wait_until(lambda: len(world.kfp_runs()) == 1, timeout=TIMEOUT, message="the KFP run to be created")
    world.next_second()
    world.upload_penguin(version="v2-newer")
    world.delete_run_configuration("generator")

    status = world.wait_completed(name)

    [kfp_run] = world.kfp_runs()
    assert status["providerId"] == f"kfp:{kfp_run['run_id']}"
    reference = kfp_run["pipeline_version_reference"]
    used = world.pipelines_api.pipeline_service_get_pipeline_version(
        reference["pipeline_id"], reference["pipeline_version_id"]
    )
    assert status["observedPipelineVersion"] == used.name != "v2-newer"
    assert status["dependencies"]["runConfigurations"]["generator"]["artifacts"] == [
        {"name": "examples", "location": "gs://first"}
    ]
    assert operator.metric("kfp_operator_run_submissions_total", result="adopted") == 1
    assert operator.metric("kfp_operator_kfp_requests_total", operation="create_run") == 1
