"""The operator's KFP calls against the real KFP API server in multi-user mode.

A multi-user server reviews the caller's bearer token with the API server (audience
``pipelines.kubeflow.org``) and authorizes each call with a SubjectAccessReview for the
token's user in the namespace concerned. These tests set the operator up as
docs/installation.md ("Multi-user KFP") tells a platform engineer to: a ServiceAccount token
of that audience, and Kubeflow's ``kubeflow-pipelines-edit`` role bound to the operator's
ServiceAccount in each profile namespace. With that, every call the operator's controllers
make in the namespace is allowed; in a namespace without the binding KFP refuses with 403,
which the run controller retries rather than failing the Run for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes
import pytest
from prometheus_client import CollectorRegistry

from kfp_devstack.examples import PIPELINES_DIR
from kfp_devstack.realkfp.kfp_server import KfpApiServer
from kfp_devstack.waiting import wait_until
from kfp_operator.clients.kfp import KfpClient, KfpMetrics
from kfp_operator.clients.kfp_catalog import CachedKfpCatalog
from kfp_operator.settings import KfpConfig
from reconcilers.api.run import RunView
from reconcilers.clients import KfpError
from reconcilers.run.resolve import Resolved
from reconcilers.run.steps import refusal
from reconcilers.run.submit import create_run_request
from reconcilers.run.tracking import find_marked_run, finished_since_filter
from tests.support.real_kfp import (
    KFP_AUDIENCE,
    KUBEFLOW_PIPELINES_EDIT_RULES,
    bind_cluster_role,
    cluster_role,
)

pytestmark = pytest.mark.slow

PENGUIN = (PIPELINES_DIR / "penguin_pipeline.yaml").read_text()


@dataclass(frozen=True)
class Operator:
    """The operator's KFP clients, authenticated as its ServiceAccount."""

    kfp: KfpClient
    catalog: CachedKfpCatalog
    user: str


@pytest.fixture(scope="module")
def kubeflow_pipelines_edit(api_client: kubernetes.client.ApiClient) -> Iterator[str]:
    name = cluster_role(api_client, KUBEFLOW_PIPELINES_EDIT_RULES)
    yield name
    kubernetes.client.RbacAuthorizationV1Api(api_client).delete_cluster_role(name)


@pytest.fixture(scope="module")
def operator(
    real_kfp_multi_user: KfpApiServer,
    make_namespace: Callable[..., str],
    service_account_token: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    """The token the chart mounts (a projected token of KFP's audience), in the file
    ``kfp.tokenPath`` names."""
    namespace = make_namespace("kfp-operator")
    token_file = tmp_path_factory.mktemp("kfp-token") / "token"
    token_file.write_text(service_account_token(namespace, "kfp-operator", [KFP_AUDIENCE]))
    config = KfpConfig(endpoint=real_kfp_multi_user.url, token_path=str(token_file), multi_user=True)
    kfp = KfpClient(config, KfpMetrics(CollectorRegistry()))
    yield Operator(kfp, CachedKfpCatalog(kfp), f"system:serviceaccount:{namespace}:kfp-operator")
    kfp.close()


@pytest.fixture(scope="module")
def profile(
    api_client: kubernetes.client.ApiClient,
    make_namespace: Callable[..., str],
    kubeflow_pipelines_edit: str,
    operator: Operator,
) -> str:
    """A profile namespace where the operator's ServiceAccount holds kubeflow-pipelines-edit."""
    namespace = make_namespace("profile")
    bind_cluster_role(api_client, namespace, kubeflow_pipelines_edit, operator.user)
    return namespace


def a_run(namespace: str) -> RunView:
    name = f"penguin-{uuid.uuid4().hex[:6]}"
    return RunView(
        {
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
            "spec": {"pipeline": "penguin-pipeline", "experimentName": "penguins"},
        }
    )


def test_the_edit_role_lets_the_operator_do_all_it_does_in_the_profile(
    operator: Operator, profile: str
) -> None:
    kfp, catalog = operator.kfp, operator.catalog

    # The pipeline controller: a namespaced pipeline and its versions.
    pipeline_id = kfp.create_pipeline(name="penguin-pipeline", description="managed", namespace=profile)[
        "pipeline_id"
    ]
    assert kfp.get_pipeline_by_name("penguin-pipeline", profile)["pipeline_id"] == pipeline_id
    assert kfp.get_pipeline(pipeline_id)["namespace"] == profile
    kfp.upload_pipeline_version(pipeline_id, name="v1", description="managed", content=PENGUIN)
    version = kfp.find_pipeline_version(pipeline_id, "v1")
    assert [v["name"] for v in kfp.all_pipeline_versions(pipeline_id)] == ["v1"]

    # The experiment controller.
    experiment_id = kfp.create_experiment(display_name="penguins", description="managed", namespace=profile)[
        "experiment_id"
    ]
    assert kfp.find_experiment("penguins", profile)["experiment_id"] == experiment_id
    assert kfp.experiment_has_runs(experiment_id) is False

    # The run controller: resolve by name in the Run's namespace, look for an earlier
    # submission, submit, watch, terminate.
    assert catalog.pipeline_id("penguin-pipeline", profile) == pipeline_id
    assert catalog.pipeline_version(pipeline_id, None).version_id == version["pipeline_version_id"]
    assert catalog.experiment_id("penguins", profile) == experiment_id
    assert catalog.experiment_name(experiment_id) == "penguins"
    assert catalog.pipeline_id("no-such-pipeline", profile) is None  # the shared lookup is allowed too

    run = a_run(profile)
    assert find_marked_run(kfp, run) is None
    resolved = Resolved(
        pipeline_id=pipeline_id,
        version=catalog.pipeline_version(pipeline_id, "v1"),
        experiment_id=experiment_id,
        experiment_name="penguins",
        parameters={"EXAMPLES": "gs://penguins/examples", "TRAINING_RUNS": 2},
        dependencies={},
    )
    created = kfp.create_run(create_run_request(run, resolved))
    assert find_marked_run(kfp, run)["run_id"] == created["run_id"]
    assert kfp.get_run(created["run_id"])["experiment_id"] == experiment_id
    assert kfp.experiment_has_runs(experiment_id) is True
    kfp.terminate_run(created["run_id"])
    wait_until(
        lambda: kfp.get_run(created["run_id"])["state"] in ("CANCELING", "CANCELED"),
        timeout=20,
        message="the run to be terminated",
    )

    # The bulk poll lists the operator's finished runs per namespace (none has finished: nothing
    # drives this server's Workflows).
    since = datetime.now(UTC) - timedelta(minutes=5)
    pages = kfp.list_run_pages(
        filter=finished_since_filter(since), sort_by="finished_at desc", namespace=profile
    )
    assert [run for page in pages for run in page.runs] == []

    # Clean-up as the controllers do it.
    kfp.archive_experiment(experiment_id)
    kfp.unarchive_experiment(experiment_id)
    kfp.delete_pipeline_version(pipeline_id, version["pipeline_version_id"])
    kfp.delete_pipeline(pipeline_id)
    assert kfp.get_pipeline(pipeline_id) is None


def test_without_the_role_kfp_refuses_and_the_run_is_retried_not_failed(
    operator: Operator, profile: str, make_namespace: Callable[..., str]
) -> None:
    elsewhere = make_namespace("other-profile")

    with pytest.raises(KfpError) as refused:
        operator.kfp.create_experiment(display_name="penguins", description="", namespace=elsewhere)
    assert refused.value.status == 403
    assert operator.user in refused.value.message  # KFP names who was refused, and where
    assert elsewhere in refused.value.message

    with pytest.raises(KfpError) as listing:
        find_marked_run(operator.kfp, a_run(elsewhere))
    assert listing.value.status == 403
    assert refusal(listing.value) is None  # not the Run's fault: retried with backoff
    assert not listing.value.is_transient


def test_a_call_without_a_token_of_kfps_audience_is_not_authenticated(
    real_kfp_multi_user: KfpApiServer,
    profile: str,
    make_namespace: Callable[..., str],
    service_account_token: Callable[..., str],
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    # A token of the API server's own audience, as a pod's default token is.
    token_file.write_text(service_account_token(make_namespace("kfp-operator"), "kfp-operator"))
    config = KfpConfig(endpoint=real_kfp_multi_user.url, token_path=str(token_file), multi_user=True)
    kfp = KfpClient(config, KfpMetrics(CollectorRegistry()))
    try:
        with pytest.raises(KfpError) as refused:
            kfp.find_experiment("penguins", profile)
        assert refused.value.status == 401
    finally:
        kfp.close()
