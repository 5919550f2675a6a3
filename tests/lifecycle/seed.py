"""The user's example as a scenario: a RunConfiguration's artifact feeds the Run, whose pushed model
is resolved, published and recorded on its own RunConfiguration. Run with different operators."""

from __future__ import annotations

import copy
from collections.abc import Callable

import yaml

from kfp_devstack.emulator import Scenario
from kfp_devstack.examples import EXAMPLE_GENERATOR_RUN_CONFIGURATION, PROJECT_ROOT
from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.completion_event.event import event_id
from tests.lifecycle.harness import OperatorProcess, World

SEED = yaml.safe_load((PROJECT_ROOT / "examples" / "run.yaml").read_text())
EXAMPLES_URI = "s3://penguin/examples/7"


def run_seed_scenario(world: World, start_operator: Callable[[], OperatorProcess]) -> OperatorProcess:
    pipeline = world.upload_penguin()
    experiment_id = world.create_experiment()
    world.create_run_configuration(EXAMPLE_GENERATOR_RUN_CONFIGURATION)
    world.set_latest_succeeded(
        EXAMPLE_GENERATOR_RUN_CONFIGURATION,
        {"providerId": "kfp:eg-7", "artifacts": [{"name": "examples", "location": EXAMPLES_URI}]},
    )
    world.create_run_configuration("penguin-pipeline-rc", {"run": copy.deepcopy(SEED["spec"])})
    world.ctl.script_pipeline(
        "penguin-pipeline",
        # The path is Pusher:pushed_model:0[pushed == 1]: output 0 is taken first and the filter
        # then applied to it, as the reference does (were output 0 not pushed, no artifact).
        Scenario(artifacts={"Pusher": {"pushed_model": [{"pushed": True}, {"pushed": False}]}}),
    )
    operator = start_operator()

    name = world.create_run(SEED["spec"], labels={RUN_CONFIGURATION_LABEL: "penguin-pipeline-rc"})

    status = world.wait_completed(name)
    run_id = status["providerId"].removeprefix("kfp:")
    uid = world.run(name)["metadata"]["uid"]

    # The KFP run: the pinned version, the experiment, and the parameters resolved and typed.
    kfp_run = world.kfp_run(run_id)
    assert kfp_run["pipeline_version_reference"] == {
        "pipeline_id": pipeline.pipeline_id,
        "pipeline_version_id": pipeline.version_id,
    }
    assert kfp_run["experiment_id"] == experiment_id
    assert kfp_run["runtime_config"]["parameters"] == {"TRAINING_RUNS": 100, "EXAMPLES": EXAMPLES_URI}
    assert len(world.kfp_runs()) == 1

    assert status["completionState"] == "Succeeded"
    assert status["observedPipelineVersion"] == "v1-abcdef"
    assert status["dependencies"] == {
        "runConfigurations": {
            EXAMPLE_GENERATOR_RUN_CONFIGURATION: {
                "providerId": "kfp:eg-7",
                "artifacts": [{"name": "examples", "location": EXAMPLES_URI}],
            }
        }
    }
    # Output 0, which the filter accepted because it was pushed.
    [artifact] = status["artifacts"]
    assert artifact["name"] == "serving-model"
    [recorded] = world.mlmd().get_artifacts_by_uri(artifact["location"])
    assert recorded.custom_properties["pushed"].int_value == 1

    # The run-completion event, field by field.
    world.wait_run(name, lambda s: (s.get("completionEvent") or {}).get("deliveredAt"), "delivered")
    [event] = world.published_events()
    assert event == {
        "specversion": "1.0",
        "id": event_id(uid, run_id),
        "source": "kfp",
        "type": "org.kubeflow.pipelines.run-completion",
        "time": status["finishedAt"],
        "datacontenttype": "application/json",
        "data": {
            "status": "succeeded",
            "pipelineName": f"{world.namespace}/penguin-pipeline",
            "runName": f"{world.namespace}/{name}",
            "runConfigurationName": f"{world.namespace}/penguin-pipeline-rc",
            "runId": run_id,
            "artifacts": [artifact],
            "provider": "kfp",
            "runStartTime": status["startedAt"],
            "runEndTime": status["finishedAt"],
        },
    }

    # The owning RunConfiguration now offers the artifact to Runs that depend on it.
    latest = world.run_configuration("penguin-pipeline-rc")["status"]["latestRuns"]["succeeded"]
    assert latest == {
        "providerId": status["providerId"],
        "artifacts": [artifact],
        "runName": f"{world.namespace}/{name}",
        "finishedAt": status["finishedAt"],
    }
    world.wait_events(
        name, lambda events: [r for _, r, _ in events] == ["Submitted", "Succeeded"], "exactly two"
    )
    return operator
