"""The chart's roles for the people who use Runs: what they grant, and where they aggregate.

The test stack has no kube-controller-manager, so no aggregation controller fills the built-in
``view``/``edit``/``admin`` roles. What it would do is checked in two halves instead: the built-in
roles' own aggregation selectors (read from the API server, which creates them at start-up) select
the chart's roles by their labels; and a user bound to each chart role may do, as a
SubjectAccessReview answers, exactly what the role says and nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

from kfp_devstack.waiting import wait_until
from tests.chart.chartlib import Installed, render

GROUP = "pipelines.kubeflow.org"
KINDS = ("runs", "runconfigurations")
READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")


@pytest.fixture(scope="module")
def roles_installed(install: Callable[..., Installed]) -> Installed:
    return install({})


def selects(selector: Any, labels: dict[str, str]) -> bool:
    """Whether a (match-labels only, as the built-in roles use) label selector selects ``labels``."""
    return all(labels.get(key) == value for key, value in (selector.match_labels or {}).items())


@pytest.mark.parametrize(
    ("builtin", "role"),
    [("view", "view"), ("edit", "edit"), ("admin", "edit")],
)
def test_the_builtin_roles_aggregate_the_chart_roles(
    api_client: kubernetes.client.ApiClient, roles_installed: Installed, builtin: str, role: str
) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    aggregation = rbac.read_cluster_role(builtin).aggregation_rule
    installed = rbac.read_cluster_role(f"{roles_installed.namespace}-{role}")

    assert any(selects(s, installed.metadata.labels) for s in aggregation.cluster_role_selectors)


def test_without_aggregation_no_builtin_role_selects_them(api_client: kubernetes.client.ApiClient) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    selectors = [
        s
        for name in ("view", "edit", "admin")
        for s in rbac.read_cluster_role(name).aggregation_rule.cluster_role_selectors
    ]
    rendered = render({"rbac": {"userRoles": {"aggregate": False}}})

    for role in ("kfp-operator-view", "kfp-operator-edit"):
        labels = rendered.one("ClusterRole", role)["metadata"]["labels"]
        assert not any(selects(s, labels) for s in selectors), role


class Reviewer:
    """Asks the API server what a user may do with Runs and RunConfigurations in a namespace."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.authorization = kubernetes.client.AuthorizationV1Api(api_client)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)

    def allowed(self, user: str, namespace: str, verb: str, resource: str, subresource: str = "") -> bool:
        review = self.authorization.create_subject_access_review(
            {
                "spec": {
                    "user": user,
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": verb,
                        "group": GROUP,
                        "resource": resource,
                        "subresource": subresource,
                    },
                }
            }
        )
        return bool(review.status.allowed)

    def permissions(self, user: str, namespace: str) -> set[str]:
        return {
            f"{verb} {resource}{'/' + sub if sub else ''}"
            for resource in KINDS
            for sub in ("", "status")
            for verb in (*READ, *WRITE)
            if self.allowed(user, namespace, verb, resource, sub)
        }

    def bind(self, namespace: str, cluster_role: str, user: str) -> None:
        self.rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"{user}-{cluster_role}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
            },
        )
        # The authorizer sees the binding through its own watch.
        wait_until(
            lambda: self.allowed(user, namespace, "get", "runs"),
            timeout=10,
            message=f"the binding of {cluster_role} to take effect",
        )


@pytest.fixture
def reviewer(api_client: kubernetes.client.ApiClient) -> Reviewer:
    return Reviewer(api_client)


def user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def test_the_view_role_reads_runs_and_runconfigurations(
    reviewer: Reviewer, roles_installed: Installed, make_namespace: Callable[..., str]
) -> None:
    namespace, alice = make_namespace("team"), user("alice")
    reviewer.bind(namespace, f"{roles_installed.namespace}-view", alice)

    assert reviewer.permissions(alice, namespace) == {
        f"{verb} {kind}{sub}" for kind in KINDS for sub in ("", "/status") for verb in READ
    }
    assert reviewer.permissions(alice, make_namespace("other")) == set()


def test_the_edit_role_writes_them_but_not_their_status(
    reviewer: Reviewer, roles_installed: Installed, make_namespace: Callable[..., str]
) -> None:
    namespace, bob = make_namespace("team"), user("bob")
    reviewer.bind(namespace, f"{roles_installed.namespace}-edit", bob)

    assert reviewer.permissions(bob, namespace) == {
        f"{verb} {kind}" for kind in KINDS for verb in (*READ, *WRITE)
    } | {f"{verb} {kind}/status" for kind in KINDS for verb in READ}
    assert reviewer.permissions(bob, make_namespace("other")) == set()


def test_kubeflows_pipelines_edit_role_already_creates_and_deletes_runs(
    reviewer: Reviewer, api_client: kubernetes.client.ApiClient, make_namespace: Callable[..., str]
) -> None:
    """The overlap docs/installation.md warns of: Kubeflow's aggregate-to-kubeflow-pipelines-edit
    rule for KFP's own (v1 API) runs names the same group and resource as the operator's Runs."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    name = f"kubeflow-pipelines-edit-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["runs"],
                    "verbs": ["archive", "create", "delete", "retry", "terminate", "unarchive"],
                }
            ],
        }
    )
    namespace, carol = make_namespace("profile"), user("carol")
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": carol},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": carol}],
        },
    )
    wait_until(
        lambda: reviewer.allowed(carol, namespace, "create", "runs"), timeout=10, message="the binding"
    )

    assert reviewer.permissions(carol, namespace) == {"create runs", "delete runs"}


# ---- rendering -------------------------------------------------------------------------------


AGGREGATION = "rbac.authorization.k8s.io/aggregate-to-"


def aggregation_labels(role: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in role["metadata"]["labels"].items() if k.startswith(AGGREGATION)}


def test_view_aggregates_to_view_and_edit_to_edit_and_admin() -> None:
    rendered = render()

    assert aggregation_labels(rendered.one("ClusterRole", "kfp-operator-view")) == {
        f"{AGGREGATION}view": "true"
    }
    assert aggregation_labels(rendered.one("ClusterRole", "kfp-operator-edit")) == {
        f"{AGGREGATION}edit": "true",
        f"{AGGREGATION}admin": "true",
    }


def test_extra_labels_aggregate_them_elsewhere_too() -> None:
    kubeflow = "rbac.authorization.kubeflow.org/aggregate-to-kubeflow-"
    rendered = render(
        {
            "rbac": {
                "userRoles": {
                    "aggregate": False,
                    "viewLabels": {f"{kubeflow}view": "true"},
                    "editLabels": {f"{kubeflow}edit": "true"},
                }
            }
        }
    )

    view, edit = (
        rendered.one("ClusterRole", "kfp-operator-view"),
        rendered.one("ClusterRole", "kfp-operator-edit"),
    )
    assert aggregation_labels(view) == aggregation_labels(edit) == {}
    assert view["metadata"]["labels"][f"{kubeflow}view"] == "true"
    assert edit["metadata"]["labels"][f"{kubeflow}edit"] == "true"


def test_the_user_roles_can_be_left_out() -> None:
    for values in ({"rbac": {"userRoles": {"create": False}}}, {"rbac": {"create": False}}):
        names = {role["metadata"]["name"] for role in render(values).of_kind("ClusterRole")}
        assert {"kfp-operator-view", "kfp-operator-edit"}.isdisjoint(names)
