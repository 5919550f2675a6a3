"""The run-completion CloudEvent, field by field."""

from __future__ import annotations

from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.api.run import RunView
from reconcilers.completion_event.event import completion_event, event_id
from tests.support.objects import run

STATUS = {
    "providerId": "kfp:r-1",
    "completionState": "Succeeded",
    "startedAt": "2026-01-02T03:04:05Z",
    "finishedAt": "2026-01-02T03:09:00Z",
    "artifacts": [{"name": "serving-model", "location": "s3://m"}],
}


def test_a_succeeded_run_of_a_run_configuration() -> None:
    view = RunView(run(uid="u-1", status=STATUS, labels={RUN_CONFIGURATION_LABEL: "rc"}))

    assert completion_event(view, "kfp") == {
        "specversion": "1.0",
        "id": event_id("u-1", "r-1"),
        "source": "kfp",
        "type": "org.kubeflow.pipelines.run-completion",
        "time": "2026-01-02T03:09:00Z",
        "datacontenttype": "application/json",
        "data": {
            "status": "succeeded",
            "pipelineName": "ns/penguin-pipeline",
            "runName": "ns/penguin-run-x",
            "runConfigurationName": "ns/rc",
            "runId": "r-1",
            "artifacts": [{"name": "serving-model", "location": "s3://m"}],
            "provider": "kfp",
            "runStartTime": "2026-01-02T03:04:05Z",
            "runEndTime": "2026-01-02T03:09:00Z",
        },
    }


def test_a_failed_standalone_run_omits_the_run_configuration() -> None:
    status = {**STATUS, "completionState": "Failed", "artifacts": None}
    data = completion_event(RunView(run(status=status)), "kfp")["data"]

    assert data["status"] == "failed"
    assert data["artifacts"] == []
    assert "runConfigurationName" not in data


def test_the_id_is_stable_per_completion_and_differs_between_runs() -> None:
    assert event_id("u-1", "r-1") == event_id("u-1", "r-1")
    assert event_id("u-1", "r-1") != event_id("u-2", "r-1")
