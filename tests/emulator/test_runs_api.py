"""RunService: creation checks, the state machine, terminate, retry, archive, delete."""

from __future__ import annotations

import pytest
from kfp_server_api import V2beta1Experiment
from kfp_server_api.exceptions import ApiException

from kfp_devstack.emulator import Scenario, Task
from tests.emulator.helpers import (
    PENGUIN_PARAMETERS,
    PENGUIN_YAML,
    UNSPECIFIED,
    error_body,
    history_of,
    raw_call,
    unique,
)

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract

EPOCH = "1970-01-01T00:00:00Z"


def _create_raw(emulator, body):
    return raw_call(emulator.url, "POST", "/apis/v2beta1/runs", body=body)


def _source(pipeline_id):
    return {"pipeline_version_reference": {"pipeline_id": pipeline_id}}


def _parameters(values=None):
    return {"runtime_config": {"parameters": PENGUIN_PARAMETERS if values is None else values}}


def test_a_created_run_is_pending_with_its_references_resolved(emulator, kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    [version] = kfp.pipelines.pipeline_service_list_pipeline_versions(penguin.pipeline_id).pipeline_versions
    default = kfp.experiments.experiment_service_list_experiments(
        filter='{"predicates":[{"key":"display_name","operation":"EQUALS","string_value":"Default"}]}'
    ).experiments[0]

    response = _create_raw(
        emulator, {"display_name": "train", **_source(penguin.pipeline_id), **_parameters()}
    )

    run = response.body
    assert response.status == 200
    assert run["state"] == "PENDING"
    assert history_of(run) == ["PENDING"]
    # The same moment, but the real server takes the clock twice: it can be the next second.
    assert run["created_at"] <= run["state_history"][0]["update_time"]
    assert run["scheduled_at"] == run["created_at"]
    assert run["finished_at"] == EPOCH
    assert run["storage_state"] == "AVAILABLE"
    assert run["experiment_id"] == default.experiment_id
    assert run["pipeline_version_reference"] == {
        "pipeline_id": penguin.pipeline_id,
        "pipeline_version_id": version.pipeline_version_id,
    }
    assert run["service_account"] == "pipeline-runner"
    assert run["runtime_config"] == {"parameters": PENGUIN_PARAMETERS}
    assert "run_details" not in run


def test_an_omitted_version_resolves_to_the_latest(kfp, penguin):
    kfp.uploads.upload_pipeline_version(str(PENGUIN_YAML), name="v2", pipelineid=penguin.pipeline_id)
    # Versions created in the same second tie on created_at; the UUID breaks the tie, in both places.
    latest = kfp.pipelines.pipeline_service_list_pipeline_versions(
        penguin.pipeline_id, sort_by="created_at desc", page_size=1
    ).pipeline_versions[0]

    run = kfp.create_run(penguin.pipeline_id)

    assert run.pipeline_version_reference.pipeline_version_id == latest.pipeline_version_id


def test_a_run_goes_pending_unspecified_running_succeeded(kfp, penguin, emulator, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id)
    reported = kfp.wait_until_reported(run.run_id)
    ctl.release(run.run_id)

    finished = kfp.wait_until_finished(run.run_id)

    # The agent's first report of the Workflow, which has no phase yet, takes the state away.
    assert reported.state is None
    assert history_of(reported) == ["PENDING", UNSPECIFIED]
    assert finished.state == "SUCCEEDED"
    assert history_of(finished) == ["PENDING", UNSPECIFIED, "RUNNING", "SUCCEEDED"]
    raw = raw_call(emulator.url, "GET", f"/apis/v2beta1/runs/{run.run_id}").body
    assert raw["finished_at"] != EPOCH
    # The history has the time of the agent's report: on a real server, a moment after the finish.
    assert raw["finished_at"] <= raw["state_history"][-1]["update_time"]


def test_task_details_mirror_the_argo_nodes_once_running(kfp, penguin, kfp_backend):
    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)

    # One task per Argo node; their order is the server's (the real one lists them by task id).
    names = [task.display_name for task in run.run_details.task_details]
    assert {"root-driver", "root"} <= set(names)
    assert sum(1 for name in names if name.startswith("penguin-pipeline-")) == 1  # the workflow's own
    for key in ("trainer", "evaluator", "pusher"):
        assert {f"{key}-driver", key} <= set(names)
    assert names.count("executor") == 3
    unfinished = [(t.display_name, t.state) for t in run.run_details.task_details if t.state != "SUCCEEDED"]
    if kfp_backend == "emulator":
        # The real server sometimes keeps task details of a finished run RUNNING (docs/emulator.md §15.4).
        assert unfinished == []


def test_a_client_supplied_run_id_is_honoured(emulator, penguin):
    run_id = unique("client-chosen")

    response = _create_raw(
        emulator, {"run_id": run_id, "display_name": "r", **_source(penguin.pipeline_id), **_parameters()}
    )
    duplicate = _create_raw(
        emulator, {"run_id": run_id, "display_name": "r", **_source(penguin.pipeline_id), **_parameters()}
    )

    assert response.body["run_id"] == run_id
    assert duplicate.status == 500


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        # display name first: 500 even though the experiment and the pipeline are unknown too
        ({"experiment_id": "nope", **_source("nope")}, 500, "display name"),
        # then the experiment: 404 even though the pipeline is unknown too
        ({"display_name": "r", "experiment_id": "nope", **_source("nope")}, 404, "experiment"),
        # then the pipeline: 500 even though the parameters are wrong too
        ({"display_name": "r", **_source("nope"), **_parameters({"bogus": 1})}, 500, "pipeline"),
        # no pipeline source at all, or only the deprecated top-level version id: 500
        ({"display_name": "r"}, 500, "no source"),
        ({"display_name": "r", "pipeline_version_id": "whatever"}, 500, "deprecated field"),
    ],
)
def test_create_run_checks_in_the_servers_order(emulator, body, status, reason):
    response = _create_raw(emulator, body)

    assert response.status == status, reason
    if status == 500:
        assert response.body["details"][0]["message"] == "Internal Server Error"


def test_create_run_parameters_are_checked_last(emulator, penguin):
    response = _create_raw(
        emulator, {"display_name": "r", **_source(penguin.pipeline_id), **_parameters({"TRAINING_RUNS": 1})}
    )

    assert response.status == 400
    assert response.body["details"][0]["message"] == (
        "parameter EXAMPLES is not optional, yet has neither default value nor user provided value"
    )


def test_a_version_of_another_pipeline_is_a_500(emulator, kfp, penguin):
    other = kfp.upload()
    [version] = kfp.pipelines.pipeline_service_list_pipeline_versions(other.pipeline_id).pipeline_versions
    body = {
        "display_name": "r",
        "pipeline_version_reference": {
            "pipeline_id": penguin.pipeline_id,
            "pipeline_version_id": version.pipeline_version_id,
        },
        **_parameters(),
    }

    assert _create_raw(emulator, body).status == 500


def test_plugins_output_is_server_owned(emulator, penguin):
    body = {"display_name": "r", **_source(penguin.pipeline_id), **_parameters()}

    response = _create_raw(emulator, {**body, "plugins_output": {"mlflow": {}}})
    empty = _create_raw(emulator, {**body, "plugins_output": {}})

    assert response.status == 409
    assert response.body["code"] == 10
    assert empty.status == 200  # an empty map is no value


def test_an_inline_pipeline_spec_runs_and_is_echoed(emulator, kfp, penguin):
    [version] = kfp.pipelines.pipeline_service_list_pipeline_versions(penguin.pipeline_id).pipeline_versions
    body = {"display_name": "inline", "pipeline_spec": version.pipeline_spec, **_parameters()}

    created = _create_raw(emulator, body).body

    assert created["pipeline_spec"]["pipelineInfo"]["name"] == "penguin-pipeline"
    assert "pipeline_version_reference" not in created
    assert kfp.wait_until_finished(created["run_id"]).state == "SUCCEEDED"


def test_get_unknown_run_is_a_404(kfp):
    with pytest.raises(ApiException) as raised:
        kfp.runs.run_service_get_run("no-such-run")

    assert raised.value.status == 404
    assert error_body(raised.value) == {
        "code": 5,
        "message": (
            "Failed to get a run: Failed to fetch run no-such-run: "
            "ResourceNotFoundError: Run no-such-run not found"
        ),
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.Status",
                "code": 5,
                "message": "Run no-such-run not found",
            }
        ],
    }


def test_list_runs_of_an_experiment(kfp, penguin):
    experiment = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=unique("e"))
    )
    runs = [kfp.create_run(penguin.pipeline_id, experiment_id=experiment.experiment_id) for _ in range(3)]

    listed = kfp.runs.run_service_list_runs(experiment_id=experiment.experiment_id)

    assert listed.total_size == 3
    assert sorted(r.run_id for r in listed.runs) == sorted(r.run_id for r in runs)
    with pytest.raises(ApiException) as raised:
        kfp.runs.run_service_list_runs(experiment_id="no-such-experiment")
    assert raised.value.status == 404


def test_terminate_goes_canceling_then_failed(kfp, penguin, ctl, emulator):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True, tasks={"Trainer": Task(held=True)}))
    run = kfp.create_reported_run(ctl, penguin.pipeline_id)
    ctl.wait_for_task(run.run_id, "Trainer", "RUNNING")
    kfp.wait_for_state(run.run_id, ["RUNNING"])  # reported: a real server's agent reports later

    assert kfp.as_json(kfp.runs.run_service_terminate_run(run.run_id)) == {}
    right_after = kfp.runs.run_service_get_run(run.run_id)
    finished = kfp.wait_until_finished(run.run_id)

    assert right_after.state in ("CANCELING", "FAILED")
    assert finished.state == "FAILED"
    assert history_of(finished) == ["PENDING", UNSPECIFIED, "RUNNING", "CANCELING", "FAILED"]
    assert raw_call(emulator.url, "GET", f"/apis/v2beta1/runs/{run.run_id}").body["finished_at"] != EPOCH


def test_terminate_of_a_pending_run_ends_failed(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id)
    kfp.wait_until_reported(run.run_id)

    kfp.runs.run_service_terminate_run(run.run_id)

    finished = kfp.wait_until_finished(run.run_id)
    assert history_of(finished) == ["PENDING", UNSPECIFIED, "CANCELING", "FAILED"]


def test_terminate_of_a_finished_or_unknown_run_fails(kfp, penguin):
    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)

    with pytest.raises(ApiException) as finished:
        kfp.runs.run_service_terminate_run(run.run_id)
    with pytest.raises(ApiException) as unknown:
        kfp.runs.run_service_terminate_run("no-such-run")

    assert finished.value.status == 400
    assert error_body(finished.value)["details"][0]["message"] == (
        f"Failed to terminate a run {run.run_id}. Row not found"
    )
    assert unknown.value.status == 404


def test_a_failing_task_fails_the_run(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario.failing("Evaluator", hold_pending=True))

    run = kfp.wait_until_finished(kfp.create_reported_run(ctl, penguin.pipeline_id).run_id)

    assert run.state == "FAILED"
    assert history_of(run) == ["PENDING", UNSPECIFIED, "RUNNING", "FAILED"]
    progress = ctl.run_progress(run.run_id)["tasks"]
    assert [progress[key]["state"] for key in ("trainer", "evaluator", "pusher")] == [
        "SUCCEEDED",
        "FAILED",
        "WAITING",
    ]


def test_retry_reruns_the_failed_tasks_with_finished_at_reset(kfp, penguin, ctl, emulator):
    ctl.script_pipeline(penguin.name, Scenario.failing("Evaluator", hold_pending=True))
    run_id = kfp.create_reported_run(ctl, penguin.pipeline_id).run_id
    kfp.wait_until_finished(run_id)
    ctl.script_run(run_id, Scenario(tasks={"Evaluator": Task(fails=False, held=True)}))

    assert kfp.as_json(kfp.runs.run_service_retry_run(run_id)) == {}

    retried = raw_call(emulator.url, "GET", f"/apis/v2beta1/runs/{run_id}").body
    assert retried["state"] == "RUNNING"
    assert retried["finished_at"] == EPOCH
    held = ctl.wait_for_task(run_id, "Evaluator", "RUNNING")
    assert held["attempt"] == 2
    assert ctl.run_progress(run_id)["tasks"]["trainer"]["attempt"] == 1  # succeeded tasks are kept
    ctl.release(run_id, "Evaluator")
    finished = kfp.wait_until_finished(run_id)
    assert finished.state == "SUCCEEDED"
    assert history_of(finished) == ["PENDING", UNSPECIFIED, "RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]


def test_retry_of_a_run_that_has_not_failed_is_a_409(kfp, penguin):
    run = kfp.wait_until_finished(kfp.create_run(penguin.pipeline_id).run_id)

    with pytest.raises(ApiException) as raised:
        kfp.runs.run_service_retry_run(run.run_id)

    assert raised.value.status == 409
    assert error_body(raised.value)["details"][0]["message"] == "Workflow must be Failed/Error to retry"


def test_archive_and_unarchive_change_only_the_storage_state(kfp, penguin, ctl):
    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id)
    kfp.wait_until_reported(run.run_id)

    kfp.runs.run_service_archive_run(run.run_id)
    archived = kfp.runs.run_service_get_run(run.run_id)
    kfp.runs.run_service_unarchive_run(run.run_id)
    unarchived = kfp.runs.run_service_get_run(run.run_id)

    assert (archived.storage_state, archived.state) == ("ARCHIVED", None)
    assert (unarchived.storage_state, unarchived.state) == ("AVAILABLE", None)


def test_delete_then_get_is_a_404(kfp, penguin):
    run = kfp.create_run(penguin.pipeline_id)

    kfp.runs.run_service_delete_run(run.run_id)

    with pytest.raises(ApiException) as raised:
        kfp.runs.run_service_get_run(run.run_id)
    assert raised.value.status == 404
    with pytest.raises(ApiException) as again:
        kfp.runs.run_service_delete_run(run.run_id)
    assert again.value.status == 404
