from __future__ import annotations

from reconcilers.api.run import RunView
from reconcilers.run.resolve import PipelineVersion, Resolved
from reconcilers.run.submit import create_run_request
from reconcilers.run.tracking import marker, run_uid_from_description
from tests.support.objects import run

RESOLVED = Resolved(
    pipeline_id="p-1",
    version=PipelineVersion("p-1", "v-1", "v1-abcdef"),
    experiment_id="e-1",
    experiment_name="penguin-experiment",
    parameters={"TRAINING_RUNS": 100, "EXAMPLES": "s3://x"},
    dependencies={},
)


def test_the_request_pins_both_version_ids_and_carries_the_marker() -> None:
    view = RunView(run(uid="u-1"))

    body = create_run_request(view, RESOLVED)

    assert body == {
        "display_name": "ns/penguin-run-x",
        "description": f"Run ns/penguin-run-x created by kfp-operator. {marker('u-1')}",
        "experiment_id": "e-1",
        "pipeline_version_reference": {"pipeline_id": "p-1", "pipeline_version_id": "v-1"},
        "runtime_config": {"parameters": {"TRAINING_RUNS": 100, "EXAMPLES": "s3://x"}},
    }
    assert run_uid_from_description(body["description"]) == "u-1"


def test_runs_the_operator_did_not_create_have_no_run_uid() -> None:
    assert run_uid_from_description("trained by hand") is None
    assert run_uid_from_description(None) is None
