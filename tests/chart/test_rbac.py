"""The chart's ServiceAccount can do exactly the documented list of things, and nothing else.

The golden lists below are the operator's permissions; docs/installation.md shows the same list
(a test keeps them equal), so widening them is a visible change in both places. A permission is
written ``<verb> <resource>[.<group>] [<resource name>]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

from kfp_devstack.controlplane import ControlPlane
from tests.chart.chartlib import DOCS, Installed
from tests.support.real_kfp import KUBEFLOW_PIPELINES_EDIT_RULES, cluster_role

LEASE = "kfp-operator-leader"
GROUP = "pipelines.kubeflow.org"

# In every namespace whose Runs the operator handles (all, or config.watchNamespaces).
RUN_NAMESPACE_PERMISSIONS = {
    f"get runs.{GROUP}",
    f"list runs.{GROUP}",
    f"watch runs.{GROUP}",
    f"create runs.{GROUP}",
    f"patch runs.{GROUP}",
    f"delete runs.{GROUP}",
    f"get runs/status.{GROUP}",
    f"patch runs/status.{GROUP}",
    f"update runs/finalizers.{GROUP}",
    f"get runconfigurations.{GROUP}",
    f"list runconfigurations.{GROUP}",
    f"watch runconfigurations.{GROUP}",
    f"get runconfigurations/status.{GROUP}",
    f"patch runconfigurations/status.{GROUP}",
    f"update runconfigurations/finalizers.{GROUP}",
    *(
        f"{verb} {kind}.{GROUP}"
        for kind in ("pipelines", "experiments")
        for verb in ("get", "list", "watch", "patch")
    ),
    *(f"{verb} {kind}/status.{GROUP}" for kind in ("pipelines", "experiments") for verb in ("get", "patch")),
    *(f"update {kind}/finalizers.{GROUP}" for kind in ("pipelines", "experiments")),
    "get jobs.batch",
    "create jobs.batch",
    "delete jobs.batch",
    "get configmaps",
    "delete configmaps",
    "create events",
    "patch events",
}
# In the Lease's namespace (the release namespace), for leader election.
LEASE_PERMISSIONS = {
    "create leases.coordination.k8s.io",
    f"get leases.coordination.k8s.io {LEASE}",
    f"update leases.coordination.k8s.io {LEASE}",
}
# Cluster-wide, with config.metrics.secure (the chart's default): who is scraping, and may they.
METRICS_AUTH_PERMISSIONS = {
    "create tokenreviews.authentication.k8s.io",
    "create subjectaccessreviews.authorization.k8s.io",
}

Mint = Callable[..., str]


def client_for(control_plane: ControlPlane, token: str) -> kubernetes.client.ApiClient:
    configuration = control_plane.admin_configuration()
    configuration.cert_file = configuration.key_file = None
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(configuration)


def rules(client: kubernetes.client.ApiClient, namespace: str) -> set[str]:
    """What the client's identity may do in ``namespace``, as a SelfSubjectRulesReview says."""
    review = kubernetes.client.AuthorizationV1Api(client).create_self_subject_rules_review(
        kubernetes.client.V1SelfSubjectRulesReview(
            spec=kubernetes.client.V1SelfSubjectRulesReviewSpec(namespace=namespace)
        )
    )
    assert not review.status.incomplete, review.status.evaluation_error
    return {
        " ".join(filter(None, (verb, f"{resource}.{group}" if group else resource, name)))
        for rule in review.status.resource_rules
        for group in rule.api_groups or [""]
        for resource in rule.resources or []
        for verb in rule.verbs
        for name in rule.resource_names or [""]
    }


class Identity:
    """The chart's ServiceAccount, with the permissions every authenticated user has removed."""

    def __init__(self, control_plane: ControlPlane, mint: Mint, installed: Installed) -> None:
        self.client = client_for(control_plane, mint(installed.namespace, installed.service_account))
        # A ServiceAccount nothing is bound to: what any authenticated identity may do.
        self._baseline = client_for(control_plane, mint(installed.namespace, "baseline"))

    def permissions(self, namespace: str) -> set[str]:
        return rules(self.client, namespace) - rules(self._baseline, namespace)


@pytest.fixture(scope="module")
def identity(control_plane: ControlPlane, service_account_token: Mint, installed: Installed) -> Identity:
    return Identity(control_plane, service_account_token, installed)


def test_permissions_in_the_release_namespace_are_the_documented_ones(
    identity: Identity, installed: Installed
) -> None:
    assert identity.permissions(installed.namespace) == (
        RUN_NAMESPACE_PERMISSIONS | LEASE_PERMISSIONS | METRICS_AUTH_PERMISSIONS
    )


def test_permissions_in_any_other_namespace_are_the_documented_ones(
    identity: Identity, make_namespace: Callable[..., str]
) -> None:
    assert (
        identity.permissions(make_namespace("elsewhere"))
        == RUN_NAMESPACE_PERMISSIONS | METRICS_AUTH_PERMISSIONS
    )


def test_watch_namespaces_limit_the_permissions_to_those_namespaces(
    install: Callable[..., Installed],
    make_namespace: Callable[..., str],
    control_plane: ControlPlane,
    service_account_token: Mint,
) -> None:
    watched = make_namespace("watched")
    namespaced = install({"config": {"watchNamespaces": [watched]}})
    identity = Identity(control_plane, service_account_token, namespaced)

    assert identity.permissions(watched) == RUN_NAMESPACE_PERMISSIONS | METRICS_AUTH_PERMISSIONS
    assert identity.permissions(namespaced.namespace) == LEASE_PERMISSIONS | METRICS_AUTH_PERMISSIONS
    assert identity.permissions(make_namespace("unwatched")) == METRICS_AUTH_PERMISSIONS


def test_plain_http_metrics_need_no_reviews(
    install: Callable[..., Installed],
    make_namespace: Callable[..., str],
    control_plane: ControlPlane,
    service_account_token: Mint,
) -> None:
    plain = install({"config": {"metrics": {"secure": False}}})
    identity = Identity(control_plane, service_account_token, plain)

    assert identity.permissions(plain.namespace) == RUN_NAMESPACE_PERMISSIONS | LEASE_PERMISSIONS
    assert identity.permissions(make_namespace("elsewhere")) == RUN_NAMESPACE_PERMISSIONS


def test_the_compile_jobs_service_account_may_create_configmaps_in_its_namespace_only(
    install: Callable[..., Installed],
    make_namespace: Callable[..., str],
    control_plane: ControlPlane,
    service_account_token: Mint,
) -> None:
    team, other = make_namespace("team"), make_namespace("other")
    install({"rbac": {"pipelineCompiler": {"namespaces": [team]}}})
    compiler = client_for(control_plane, service_account_token(team, "kfp-pipeline-compiler"))
    baseline = client_for(control_plane, service_account_token(team, "baseline"))

    assert rules(compiler, team) - rules(baseline, team) == {"create configmaps"}
    assert rules(compiler, other) - rules(baseline, other) == set()


def forbidden(call: Callable[[], Any]) -> bool:
    try:
        call()
    except kubernetes.client.ApiException as error:
        return error.status == 403
    return False


def test_the_service_account_is_refused_everything_else(
    identity: Identity, installed: Installed, make_namespace: Callable[..., str]
) -> None:
    core = kubernetes.client.CoreV1Api(identity.client)
    custom = kubernetes.client.CustomObjectsApi(identity.client)
    leases = kubernetes.client.CoordinationV1Api(identity.client)
    namespace, other = installed.namespace, make_namespace("elsewhere")
    run = {"apiVersion": f"{GROUP}/v1alpha5", "kind": "Run", "metadata": {"name": "r"}, "spec": {}}

    refused = {
        "read secrets": lambda: core.list_namespaced_secret(namespace),
        "read configmaps": lambda: core.list_namespaced_config_map(namespace),
        "create pods": lambda: core.create_namespaced_pod(namespace, {"metadata": {"name": "p"}}),
        "list namespaces": lambda: core.list_namespace(),
        "create runconfigurations": lambda: custom.create_namespaced_custom_object(
            GROUP, "v1alpha5", other, "runconfigurations", {**run, "kind": "RunConfiguration"}
        ),
        "update runs": lambda: custom.replace_namespaced_custom_object(
            GROUP, "v1alpha5", other, "runs", "r", run
        ),
        "delete runconfigurations": lambda: custom.delete_namespaced_custom_object(
            GROUP, "v1alpha5", other, "runconfigurations", "rc"
        ),
        "read leases elsewhere": lambda: leases.list_namespaced_lease(other),
        "read another lease": lambda: leases.read_namespaced_lease("someone-else", namespace),
        "list leases": lambda: leases.list_namespaced_lease(namespace),
    }

    allowed = {what for what, call in refused.items() if not forbidden(call)}
    assert allowed == set()


def test_the_service_account_can_make_the_operators_calls(
    identity: Identity,
    installed: Installed,
    api_client: kubernetes.client.ApiClient,
    make_namespace: Callable,
) -> None:
    """The calls behind the golden list, made for real with the chart's identity."""
    namespace = make_namespace("runs")
    admin = kubernetes.client.CustomObjectsApi(api_client)
    run = admin.create_namespaced_custom_object(
        GROUP,
        "v1alpha5",
        namespace,
        "runs",
        {
            "apiVersion": f"{GROUP}/v1alpha5",
            "kind": "Run",
            "metadata": {"name": "r"},
            "spec": {"pipeline": "penguin-pipeline"},
        },
    )
    custom = kubernetes.client.CustomObjectsApi(identity.client)
    core = kubernetes.client.CoreV1Api(identity.client)
    leases = kubernetes.client.CoordinationV1Api(identity.client)

    assert custom.list_cluster_custom_object(GROUP, "v1alpha5", "runs")["items"]
    custom.patch_namespaced_custom_object_status(
        GROUP, "v1alpha5", namespace, "runs", "r", {"status": {"synchronizationState": "Creating"}}
    )
    custom.patch_namespaced_custom_object(
        GROUP,
        "v1alpha5",
        namespace,
        "runs",
        "r",
        {"metadata": {"finalizers": ["finalizer.pipelines.kubeflow.org"]}},
    )
    core.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "r.1"},
            "involvedObject": {
                "kind": "Run",
                "name": "r",
                "namespace": namespace,
                "uid": run["metadata"]["uid"],
            },
            "reason": "Test",
            "message": "m",
        },
    )
    created = leases.create_namespaced_lease(
        installed.namespace, {"metadata": {"name": LEASE}, "spec": {"holderIdentity": "a"}}
    )
    created.spec.holder_identity = "b"
    leases.replace_namespaced_lease(LEASE, installed.namespace, created)
    assert leases.read_namespaced_lease(LEASE, installed.namespace).spec.holder_identity == "b"
    custom.patch_namespaced_custom_object(
        GROUP, "v1alpha5", namespace, "runs", "r", {"metadata": {"finalizers": None}}
    )
    custom.delete_namespaced_custom_object(GROUP, "v1alpha5", namespace, "runs", "r")


# ---- the documented list ----------------------------------------------------------------------------


def documented_permissions() -> dict[str, set[str]]:
    """The permission table of docs/installation.md, expanded, by scope (its first column)."""
    section = (DOCS / "installation.md").read_text().split("\n## Permissions\n", 1)[1]
    table = re.search(r"^\|.*?(?=\n[^|])", section, flags=re.M | re.S)
    assert table, "docs/installation.md: no table under ## Permissions"
    permissions: dict[str, set[str]] = {}
    for line in table.group(0).splitlines()[2:]:
        scope, group, resource, name, verbs = (cell.strip() for cell in line.strip("|").split("|"))
        group, resource, name = (re.sub(r"`|\(core\)", "", cell).strip() for cell in (group, resource, name))
        full = f"{resource}.{group}" if group else resource
        for verb in re.findall(r"`(\w+)`", verbs):
            permissions.setdefault(scope, set()).add(" ".join(filter(None, (verb, full, name))))
    return permissions


def test_the_documentation_lists_exactly_these_permissions() -> None:
    documented = documented_permissions()

    assert list(documented.values()) == [
        RUN_NAMESPACE_PERMISSIONS,
        LEASE_PERMISSIONS,
        METRICS_AUTH_PERMISSIONS,
    ]


def test_in_listed_profiles_multi_user_kfp_may_let_the_operator_act(
    install: Callable[..., Installed],
    make_namespace: Callable[..., str],
    api_client: kubernetes.client.ApiClient,
    control_plane: ControlPlane,
    service_account_token: Mint,
) -> None:
    """KFP asks the API server (a SubjectAccessReview) whether the operator's ServiceAccount may,
    say, terminate runs in the namespace: the chart's binding of Kubeflow's role answers yes."""
    edit = cluster_role(api_client, KUBEFLOW_PIPELINES_EDIT_RULES)
    profile, other = make_namespace("profile"), make_namespace("other-profile")
    installed = install({"rbac": {"kfpProfiles": {"namespaces": [profile], "clusterRole": edit}}})
    identity = Identity(control_plane, service_account_token, installed)

    kfp_permissions = {
        f"{verb} {resource}.{GROUP}"
        for rule in KUBEFLOW_PIPELINES_EDIT_RULES
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert identity.permissions(profile) - RUN_NAMESPACE_PERMISSIONS - METRICS_AUTH_PERMISSIONS == (
        kfp_permissions - RUN_NAMESPACE_PERMISSIONS
    )
    assert f"terminate runs.{GROUP}" in identity.permissions(profile)
    assert f"terminate runs.{GROUP}" not in identity.permissions(other)
