"""Resolution and submission: the stages a Run goes through, what it waits for, and what is frozen."""

from __future__ import annotations

import pytest

from kfp_devstack.emulator import Scenario, Task
from tests.lifecycle.harness import World

PIPELINE_ONLY = {"pipeline": "penguin-pipeline:v1-abcdef", "experimentName": "penguin-experiment"}
PARAMETERS = [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}]


def penguin_spec(**changes) -> dict:
    return {**PIPELINE_ONLY, "runtimeParameters": PARAMETERS, **changes}


def conditions(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or ()}


def test_a_run_goes_through_all_stages_and_is_deleted(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    world.start_operator()

    name = world.create_run(penguin_spec())

    submitted = world.wait_submitted(name)
    run_id = submitted["providerId"].removeprefix("kfp:")
    assert submitted["synchronizationState"] == "Succeeded"
    assert submitted["observedGeneration"] == 1
    assert len(submitted["version"]) == 6
    assert conditions(submitted)["Synchronized"] == ("True", "Succeeded")
    assert conditions(submitted)["DependenciesResolved"] == ("True", "Resolved")
    completed = world.wait_completed(name)
    assert completed["completionState"] == "Succeeded"
    assert conditions(completed)["Completed"] == ("True", "Succeeded")
    assert completed["markedCompletedAt"] >= completed["finishedAt"] >= completed["startedAt"]

    world.custom.delete_namespaced_custom_object(
        "pipelines.kubeflow.org", "v1alpha5", world.namespace, "runs", name
    )

    world.wait_gone(name)
    assert world.kfp_run(run_id)["state"] == "SUCCEEDED"  # a finished run stays in KFP's history
    world.wait_events(
        name, lambda events: [r for _, r, _ in events] == ["Submitted", "Succeeded"], "exactly two"
    )


def test_a_fixed_pipeline_version_is_the_one_submitted(world: World) -> None:
    old = world.upload_penguin(version="v0")
    world.upload_penguin()
    world.create_experiment()
    world.start_operator()

    name = world.create_run(penguin_spec(pipeline="penguin-pipeline:v0"))

    status = world.wait_submitted(name)
    assert status["observedPipelineVersion"] == "v0"
    kfp_run = world.kfp_run(status["providerId"].removeprefix("kfp:"))
    assert kfp_run["pipeline_version_reference"]["pipeline_version_id"] == old.version_id


def test_without_a_version_the_latest_is_used_and_frozen_at_submission(world: World) -> None:
    world.upload_penguin(version="v0")  # uploading the pipeline also makes a first version
    world.next_second()
    world.upload_penguin(version="v1")
    world.create_experiment()
    world.ctl.script_pipeline("penguin-pipeline", Scenario(tasks={"Pusher": Task(held=True)}))
    world.start_operator()

    name = world.create_run(penguin_spec(pipeline="penguin-pipeline"))
    status = world.wait_submitted(name)
    assert status["observedPipelineVersion"] == "v1"

    world.next_second()
    world.upload_penguin(version="v2")
    world.release_held_task(status["providerId"].removeprefix("kfp:"), "Pusher")

    completed = world.wait_completed(name)
    assert completed["observedPipelineVersion"] == "v1"
    assert completed["version"] == status["version"]


def test_the_default_experiment_is_used_when_none_is_named(world: World) -> None:
    world.upload_penguin()
    world.start_operator(defaultExperiment="team-default")
    world.create_experiment("team-default")

    name = world.create_run({"pipeline": "penguin-pipeline", "runtimeParameters": PARAMETERS})

    status = world.wait_submitted(name)
    kfp_run = world.kfp_run(status["providerId"].removeprefix("kfp:"))
    assert kfp_run["experiment_id"] == world.create_experiment("team-default")


def make_pipeline(world: World) -> None:
    world.upload_penguin()


def make_other_version(world: World) -> None:
    world.upload_penguin(version="v0")


def make_experiment(world: World) -> None:
    world.create_experiment()


def make_run_configuration(world: World) -> None:
    world.create_run_configuration("rc")


def make_artifact(world: World) -> None:
    world.set_latest_succeeded(
        "rc", {"providerId": "kfp:x", "artifacts": [{"name": "examples", "location": "s3://x"}]}
    )


def make_run_configuration_with_artifact(world: World) -> None:
    make_run_configuration(world)
    make_artifact(world)


REFERENCING = penguin_spec(
    runtimeParameters=[
        {"name": "TRAINING_RUNS", "value": "3"},
        {
            "name": "EXAMPLES",
            "valueFrom": {"runConfigurationRef": {"name": "rc", "outputArtifact": "examples"}},
        },
    ]
)


@pytest.mark.parametrize(
    ("present", "make", "reason", "message"),
    [
        (
            [make_experiment, make_run_configuration_with_artifact],
            make_pipeline,
            "PipelineNotFound",
            "pipeline penguin-pipeline does not exist in KFP",
        ),
        (
            [make_other_version, make_experiment, make_run_configuration_with_artifact],
            make_pipeline,
            "PipelineVersionNotFound",
            "pipeline penguin-pipeline has no version v1-abcdef in KFP",
        ),
        (
            [make_pipeline, make_run_configuration_with_artifact],
            make_experiment,
            "ExperimentNotFound",
            "experiment penguin-experiment does not exist in KFP",
        ),
        (
            [make_pipeline, make_experiment],
            make_run_configuration_with_artifact,
            "RunConfigurationNotFound",
            "parameter EXAMPLES: RunConfiguration rc does not exist",
        ),
        (
            [make_pipeline, make_experiment, make_run_configuration],
            make_artifact,
            "ArtifactNotAvailable",
            "parameter EXAMPLES: RunConfiguration rc has no succeeded run yet",
        ),
    ],
    ids=["pipeline", "version", "experiment", "run-configuration", "artifact"],
)
def test_a_run_waits_for_a_missing_dependency_and_proceeds_once_it_exists(
    world: World, present, make, reason, message
) -> None:
    for step in present:
        step(world)
    operator = world.start_operator()

    name = world.create_run(REFERENCING)

    waiting = world.wait_run(
        name, lambda s: conditions(s).get("DependenciesResolved") == ("False", reason), f"waiting ({reason})"
    )
    assert waiting["synchronizationState"] == "Creating"
    assert world.condition(name, "DependenciesResolved")["message"] == message
    world.wait_events(
        name, lambda events: ("Warning", reason, f"waiting: {message}") in events, "a waiting Event"
    )
    assert world.kfp_runs() == []
    assert operator.metric("kfp_operator_runs_waiting", reason=reason) == 1

    make(world)

    status = world.wait_submitted(name)
    assert conditions(status)["DependenciesResolved"] == ("True", "Resolved")
    assert len(world.kfp_runs()) == 1
    assert operator.metric("kfp_operator_runs_waiting") == 0


def test_dependencies_record_the_referenced_artifacts_of_each_run_configuration(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()
    for rc, artifacts in {"rc-a": ["a1", "a2", "unused"], "rc-b": ["b1"]}.items():
        world.create_run_configuration(rc)
        world.set_latest_succeeded(
            rc,
            {
                "providerId": f"kfp:{rc}",
                "artifacts": [{"name": a, "location": f"s3://{rc}/{a}"} for a in artifacts],
            },
        )
    world.start_operator()

    def ref(rc: str, artifact: str) -> dict:
        return {"runConfigurationRef": {"name": rc, "outputArtifact": artifact}}

    name = world.create_run(
        {
            **PIPELINE_ONLY,
            "runtimeParameters": [
                {"name": "TRAINING_RUNS", "value": "1"},
                {"name": "EXAMPLES", "valueFrom": ref("rc-a", "a1")},
                {"name": "EXTRA_A", "valueFrom": ref("rc-a", "a2")},
                {"name": "EXTRA_B", "valueFrom": ref("rc-b", "b1")},
            ],
        }
    )

    # EXTRA_A and EXTRA_B are not parameters of the pipeline, so KFP refuses the run; what
    # the Run recorded as its dependencies is what this test is about.
    status = world.wait_run(name, lambda s: s.get("synchronizationState") == "Failed", "refused by KFP")
    assert status["dependencies"] == {
        "runConfigurations": {
            "rc-a": {
                "providerId": "kfp:rc-a",
                "artifacts": [
                    {"name": "a1", "location": "s3://rc-a/a1"},
                    {"name": "a2", "location": "s3://rc-a/a2"},
                ],
            },
            "rc-b": {"providerId": "kfp:rc-b", "artifacts": [{"name": "b1", "location": "s3://rc-b/b1"}]},
        }
    }
    assert (
        "parameter(s) provided are not required by pipeline"
        in world.condition(name, "Synchronized")["message"]
    )


def test_a_missing_run_configuration_is_recorded_as_an_empty_dependency(world: World) -> None:
    world.start_operator()

    name = world.create_run(REFERENCING)

    status = world.wait_run(name, lambda s: s.get("dependencies"), "recording its dependencies")
    assert status["dependencies"] == {"runConfigurations": {"rc": {}}}
