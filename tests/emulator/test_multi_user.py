"""Multi-user mode: bearer tokens, namespaces on experiments, experiment required on runs."""

from __future__ import annotations

import pytest
from kfp_server_api import V2beta1Experiment
from kfp_server_api.exceptions import ApiException

from tests.emulator.helpers import PENGUIN_YAML, Kfp, connect_mlmd, error_body, raw_call, unique

TOKEN = "good-token"


@pytest.fixture
def multi_user(start_emulator, tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("file-token\n")
    return start_emulator(multi_user=True, accepted_tokens=frozenset({TOKEN}), token_file=token_file)


@pytest.fixture
def kfp(multi_user):
    return Kfp(multi_user.url, token=TOKEN)


def test_healthz_reports_multi_user_without_credentials(multi_user):
    response = raw_call(multi_user.url, "GET", "/apis/v2beta1/healthz")

    assert (response.status, response.body["multi_user"]) == (200, True)


def test_calls_without_an_identity_or_with_an_unknown_token_are_401(multi_user):
    anonymous = raw_call(multi_user.url, "GET", "/apis/v2beta1/experiments", query={"namespace": "team-a"})
    wrong = raw_call(
        multi_user.url,
        "GET",
        "/apis/v2beta1/experiments",
        query={"namespace": "team-a"},
        headers={"Authorization": "Bearer wrong"},
    )

    assert (anonymous.status, anonymous.body["code"]) == (401, 16)
    assert (wrong.status, wrong.body["code"]) == (401, 16)
    assert wrong.body["details"][0]["message"] == "the token is not authenticated"


def test_configured_tokens_the_token_file_and_the_userid_header_are_accepted(multi_user, tmp_path):
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": "Bearer file-token"},
        {"kubeflow-userid": "alice@example.com"},
    ):
        response = raw_call(
            multi_user.url, "GET", "/apis/v2beta1/experiments", query={"namespace": "team-a"}, headers=headers
        )
        assert response.status == 200, headers

    (tmp_path / "tokens").write_text("rotated-token\n")
    rotated = raw_call(
        multi_user.url,
        "GET",
        "/apis/v2beta1/experiments",
        query={"namespace": "team-a"},
        headers={"Authorization": "Bearer rotated-token"},
    )
    assert rotated.status == 200


def test_uploads_refuse_unauthenticated_callers_in_their_own_shape(multi_user):
    anonymous = Kfp(multi_user.url)

    with pytest.raises(ApiException) as raised:
        anonymous.uploads.upload_pipeline(str(PENGUIN_YAML), name="p")

    assert raised.value.status == 401
    assert set(error_body(raised.value)) == {"error_message", "error_details"}


def test_experiments_need_a_namespace_and_keep_it(kfp):
    with pytest.raises(ApiException) as no_namespace:
        kfp.experiments.experiment_service_create_experiment(V2beta1Experiment(display_name="e"))
    with pytest.raises(ApiException) as unscoped_list:
        kfp.experiments.experiment_service_list_experiments()

    created = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name="e", namespace="team-a")
    )
    other = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name="e", namespace="team-b")
    )

    assert (no_namespace.value.status, unscoped_list.value.status) == (400, 400)
    assert created.namespace == "team-a"
    listed = kfp.experiments.experiment_service_list_experiments(namespace="team-a")
    assert [e.experiment_id for e in listed.experiments] == [created.experiment_id]
    assert other.experiment_id != created.experiment_id


def test_there_is_no_default_experiment_and_runs_need_one(kfp):
    pipeline = kfp.upload()

    with pytest.raises(ApiException) as raised:
        kfp.create_run(pipeline.pipeline_id)

    assert raised.value.status == 400
    assert (
        error_body(raised.value)["details"][0]["message"]
        == "Experiment id can not be empty in multi-user mode"
    )


def test_runs_belong_to_their_experiments_namespace(kfp, multi_user):
    pipeline = kfp.upload()
    experiment = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=unique("e"), namespace="team-a")
    )
    run = kfp.create_run(pipeline.pipeline_id, experiment_id=experiment.experiment_id)

    with pytest.raises(ApiException) as unscoped:
        kfp.runs.run_service_list_runs()
    in_namespace = kfp.runs.run_service_list_runs(namespace="team-a")
    in_other = kfp.runs.run_service_list_runs(namespace="team-b")
    by_experiment = kfp.runs.run_service_list_runs(experiment_id=experiment.experiment_id)

    assert unscoped.value.status == 400
    assert [r.run_id for r in in_namespace.runs] == [run.run_id]
    assert in_other.runs is None
    assert [r.run_id for r in by_experiment.runs] == [run.run_id]
    assert run.service_account == "default-editor"
    assert kfp.wait_until_finished(run.run_id).state == "SUCCEEDED"
    context = connect_mlmd(multi_user).get_context_by_type_and_name("system.PipelineRun", run.run_id)
    assert context.custom_properties["namespace"].string_value == "team-a"
