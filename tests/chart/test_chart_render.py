"""What the chart renders: objects, names, labels, the pod's shape and the operator configuration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfp_devstack.controlplane import ControlPlane
from kfp_operator import settings as operator_config
from tests.chart.chartlib import (
    ALL_FEATURES,
    CHART,
    PROJECT_ROOT,
    HelmError,
    Rendered,
    config_keys,
    helm,
    lint,
    merge,
    render,
)

DEFAULT_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Deployment",
    "Service",
}
STANDARD_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
}
TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
CHART_YAML = yaml.safe_load((Path(__file__).parents[2] / "charts/kfp-operator/Chart.yaml").read_text())


@pytest.fixture(scope="module")
def default() -> Rendered:
    return render()


@pytest.fixture(scope="module")
def everything() -> Rendered:
    return render(ALL_FEATURES)


def load_operator_config(rendered: Rendered, tmp_path: Path) -> operator_config.Config:
    """Loads the rendered configuration file exactly as ``kfp-operator --config`` does."""
    path = tmp_path / "config.yaml"
    config_map = rendered.one("ConfigMap", rendered.deployment["metadata"]["name"])
    path.write_text(config_map["data"]["config.yaml"])
    return operator_config.load(operator_config.read_file(path), environ={})


# ---- lint and the set of objects -----------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, ALL_FEATURES], ids=["defaults", "all-features"])
def test_helm_lint_strict_is_clean(values: dict[str, Any]) -> None:
    output = lint(values)

    assert "0 chart(s) failed" in output
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


def test_kubernetes_older_than_1_30_is_refused() -> None:
    with pytest.raises(HelmError, match=r"chart requires kubeVersion: >=1\.30\.0-0"):
        helm("template", "kfp-operator", str(CHART), "--kube-version", "1.29.9")


def test_defaults_render_the_operator_and_its_permissions_only(default: Rendered) -> None:
    assert default.kinds() == DEFAULT_KINDS


def test_the_compile_jobs_service_account_is_made_in_each_listed_namespace_under_its_configured_name() -> (
    None
):
    rendered = render(
        {
            "config": {"pipelines": {"compilerServiceAccount": "compiler"}},
            "rbac": {"pipelineCompiler": {"namespaces": ["team-a", "team-b"]}},
        }
    )

    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        made = [o for o in rendered.of_kind(kind) if o["metadata"]["name"] == "compiler"]
        assert sorted(o["metadata"]["namespace"] for o in made) == ["team-a", "team-b"], kind
    binding = next(o for o in rendered.of_kind("RoleBinding") if o["metadata"]["name"] == "compiler")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "compiler", "namespace": binding["metadata"]["namespace"]}
    ]
    assert binding["roleRef"]["name"] == "compiler"


def test_the_kfp_role_is_bound_to_the_operator_in_each_listed_profile() -> None:
    rendered = render({"rbac": {"kfpProfiles": {"namespaces": ["team-a", "team-b"]}}})

    bindings = [o for o in rendered.of_kind("RoleBinding") if o["metadata"]["name"] == "kfp-operator-kfp"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "kubeflow-pipelines-edit",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kfp-operator", "namespace": "kfp-operator"}
        ]
    assert not [o for o in render().of_kind("RoleBinding") if o["metadata"]["name"] == "kfp-operator-kfp"]


def test_every_optional_feature_renders(everything: Rendered) -> None:
    assert everything.kinds() == DEFAULT_KINDS | {"ServiceMonitor", "PrometheusRule", "PodDisruptionBudget"}
    assert everything.deployment["spec"]["replicas"] == 2
    assert everything.one("ConfigMap", "kfp-operator-dashboard")
    assert everything.volume("kfp-token") is not None


def test_crds_are_the_generated_ones(tmp_path: Path) -> None:
    rendered = render(include_crds=True)
    crds = {c["metadata"]["name"]: c for c in rendered.of_kind("CustomResourceDefinition")}
    sources = {p.name for p in (PROJECT_ROOT / "crds").glob("*.yaml")}

    assert {p.name for p in (CHART / "crds").iterdir()} == sources
    for name in sources:
        assert (CHART / "crds" / name).read_text() == (PROJECT_ROOT / "crds" / name).read_text()
        source = yaml.safe_load((PROJECT_ROOT / "crds" / name).read_text())
        assert crds[source["metadata"]["name"]] == source


@pytest.mark.parametrize("values", [{}, ALL_FEATURES], ids=["defaults", "all-features"])
def test_every_object_has_the_standard_labels(values: dict[str, Any]) -> None:
    for obj in render(values).objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.keys() >= STANDARD_LABELS, f"{obj['kind']} {obj['metadata']['name']}: {labels}"
        assert labels["app.kubernetes.io/instance"] == "kfp-operator"


@pytest.mark.parametrize(
    ("release", "values", "prefix", "name_label"),
    [
        ("kfp-operator", {}, "kfp-operator", "kfp-operator"),
        ("prod", {}, "prod-kfp-operator", "kfp-operator"),
        ("prod", {"nameOverride": "pipelines"}, "prod-pipelines", "pipelines"),
        ("prod", {"fullnameOverride": "ops"}, "ops", "kfp-operator"),
    ],
)
def test_names_follow_the_release_and_the_overrides(
    release: str, values: dict[str, Any], prefix: str, name_label: str
) -> None:
    rendered = render(values, release=release)

    for obj in rendered.objects:
        assert obj["metadata"]["name"].startswith(prefix), obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == name_label
    assert rendered.pod_spec["serviceAccountName"] == prefix
    assert rendered.deployment["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": name_label,
        "app.kubernetes.io/instance": release,
    }


# ---- the pod -------------------------------------------------------------------------------------


def test_pod_runs_unprivileged_on_a_read_only_root(default: Rendered) -> None:
    pod_security = default.pod_spec["securityContext"]
    container_security = default.container["securityContext"]

    assert pod_security["runAsNonRoot"] is True
    assert isinstance(pod_security["runAsUser"], int) and pod_security["runAsUser"] > 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container_security["readOnlyRootFilesystem"] is True
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["capabilities"] == {"drop": ["ALL"]}
    assert default.volume("tmp") == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
    assert default.mount("tmp") == {"name": "tmp", "mountPath": "/tmp"}


def test_probes_and_ports_follow_the_bind_addresses(default: Rendered) -> None:
    moved = render(
        {"config": {"health": {"bindAddress": ":9440"}, "metrics": {"bindAddress": "0.0.0.0:9090"}}}
    )

    for rendered, health, metrics in ((default, 8081, 8080), (moved, 9440, 9090)):
        ports = {p["name"]: p["containerPort"] for p in rendered.container["ports"]}
        assert ports == {"health": health, "metrics": metrics}
        assert rendered.container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert rendered.container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        (service_port,) = rendered.one("Service")["spec"]["ports"]
        assert service_port["targetPort"] == "metrics"


def test_operator_reads_the_mounted_config_map(default: Rendered) -> None:
    config_map = default.one("ConfigMap", "kfp-operator")

    assert default.container["args"] == ["--config=/etc/kfp-operator/config.yaml"]
    assert default.volume("config") == {
        "name": "config",
        "configMap": {"name": config_map["metadata"]["name"]},
    }
    assert default.mount("config") == {"name": "config", "mountPath": "/etc/kfp-operator", "readOnly": True}
    assert set(config_map["data"]) == {"config.yaml"}


def test_a_configuration_change_rolls_the_pods(default: Rendered) -> None:
    def checksum(rendered: Rendered) -> str:
        return rendered.deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(render({"config": {"workers": 16}})) != checksum(default)
    assert checksum(render({"resources": {"limits": {"memory": "1Gi"}}})) == checksum(default)


def test_image_is_the_app_version_unless_pinned() -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    digest = "sha256:" + "a" * 64

    assert render().container["image"] == f"kfp-operator:{app_version}"
    assert (
        render({"image": {"repository": "r.example/kfp", "tag": "1.2"}}).container["image"]
        == "r.example/kfp:1.2"
    )
    assert render({"image": {"digest": digest}}).container["image"] == f"kfp-operator@{digest}"


# ---- the configuration file ----------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, ALL_FEATURES], ids=["defaults", "all-features"])
def test_config_map_is_a_valid_operator_configuration(values: dict[str, Any], tmp_path: Path) -> None:
    loaded = load_operator_config(render(values), tmp_path)

    if not values:
        defaults = operator_config.Config()
        assert loaded == replace(
            defaults,
            metrics=replace(defaults.metrics, secure=True),
            # The compile Jobs take the compiler from the operator's own image.
            pipelines=replace(defaults.pipelines, compiler_image=f"kfp-operator:{CHART_YAML['appVersion']}"),
        )
    else:
        assert loaded.kfp.multi_user is True
        assert loaded.kfp.token_path == TOKEN_PATH
        assert loaded.watch_namespaces == ("team-a", "team-b")
        assert loaded.events.nats.url == "nats://nats.nats:4222"
        assert [(sink.name, sink.url) for sink in loaded.events.http.sinks] == [
            ("http://events.example.svc", "http://events.example.svc/ingest"),
            ("https://hooks.example.com", "https://hooks.example.com/kfp"),
        ]
        assert loaded.run_completion_ttl == 24 * 3600


# One value per configuration key, different from its default. A key added to the operator
# without a sample here fails the test below.
SAMPLES: dict[str, Any] = {
    "provider": "kfp-prod",
    "defaultExperiment": "Nightly",
    "runCompletionTTL": "2h",
    "pollInterval": "30s",
    "safetyCheckInterval": "20m",
    "dependencyRecheckInterval": "1m",
    "deletionTimeout": "5m",
    "allowCrossNamespaceReferences": False,
    "kfpNames": "namespace-name",
    "pipelines.compilerImage": "registry.example/kfp-operator:1.2",
    "pipelines.compilerServiceAccount": "compiler",
    "pipelines.compileTimeout": "5m",
    "pipelines.versionRetention": 5,
    "workers": 16,
    "watchNamespaces": ["team-a"],
    "resyncPeriod": "1h",
    "shutdownTimeout": "20s",
    "kfp.endpoint": "https://kfp.example.com",
    "kfp.tokenPath": "/var/run/kfp/jwt",
    "kfp.multiUser": True,
    "kfp.caFile": "/etc/kfp-tls/ca.crt",
    "kfp.certFile": "/etc/kfp-tls/tls.crt",
    "kfp.keyFile": "/etc/kfp-tls/tls.key",
    "mlmd.host": "mlmd.example",
    "mlmd.port": 9090,
    "mlmd.tls": True,
    "mlmd.caFile": "/etc/mlmd-tls/ca.crt",
    "mlmd.certFile": "/etc/mlmd-tls/tls.crt",
    "mlmd.keyFile": "/etc/mlmd-tls/tls.key",
    "events.nats.url": "tls://nats.example:4222",
    "events.nats.subject": "runs",
    "events.nats.jetstream": True,
    "events.nats.credsFile": "/etc/nats/user.creds",
    "events.nats.nkeySeedFile": "/etc/nats/seed.nk",
    "events.nats.tokenFile": "/etc/nats/token",
    "events.nats.caFile": "/etc/nats/ca.crt",
    "events.http.sinks": [
        "https://hooks.example.com/a",
        {"name": "audit", "urlFile": "/etc/sinks/audit/url", "headersFile": "/etc/sinks/audit/headers"},
    ],
    "leaderElection.enabled": False,
    "leaderElection.namespace": "ops",
    "leaderElection.name": "kfp-lease",
    "leaderElection.identity": "me",
    "leaderElection.leaseDuration": "20s",
    "leaderElection.renewDeadline": "12s",
    "leaderElection.retryPeriod": "3s",
    "metrics.bindAddress": ":9090",
    "metrics.secure": True,
    "metrics.certDir": "/var/run/certs",
    "health.bindAddress": ":9091",
    "log.level": "debug",
    "log.format": "console",
    "kube.qps": 50.5,
    "kube.burst": 100,
    "kube.timeout": "45s",
}


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def test_every_configuration_key_is_settable_through_values(tmp_path: Path) -> None:
    assert set(SAMPLES) == set(config_keys()), "give every configuration key a sample value"

    loaded = load_operator_config(render({"config": nested(SAMPLES)}), tmp_path)

    for spec in operator_config.KEYS:
        expected = spec.parse(SAMPLES[spec.key])
        assert loaded.value(spec.key) == expected, spec.key
        assert expected != spec.default, f"the sample of {spec.key} is its default"


# ---- leader election -----------------------------------------------------------------------------


def test_leader_election_is_on_by_default_with_its_lease_in_the_release_namespace(default: Rendered) -> None:
    role = default.one("Role")
    env = default.env()

    assert default.config["leaderElection"]["enabled"] is True
    assert "strategy" not in default.deployment["spec"]  # rolling update: the standby takes over
    assert role["metadata"]["namespace"] == "kfp-operator"
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["KFP_OPERATOR_LEADER_ELECTION_NAMESPACE"]["value"] == "$(POD_NAMESPACE)"


def test_leader_election_turns_on_with_more_than_one_replica() -> None:
    single = render({"config": {"leaderElection": {"enabled": False}}})
    several = render({"replicaCount": 2, "config": {"leaderElection": {"enabled": False}}})

    assert single.config["leaderElection"]["enabled"] is False
    assert single.deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "Role" not in single.kinds()
    assert "KFP_OPERATOR_LEADER_ELECTION_NAMESPACE" not in single.env()
    assert several.config["leaderElection"]["enabled"] is True
    assert "strategy" not in several.deployment["spec"]
    assert several.one("Role")


def test_lease_role_follows_the_configured_lease() -> None:
    rendered = render({"config": {"leaderElection": {"name": "kfp-lease", "namespace": "ops"}}})
    role = rendered.one("Role")
    binding = rendered.one("RoleBinding")

    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ops"
    assert {"resourceNames": ["kfp-lease"], "verbs": ["get", "update"]}.items() <= role["rules"][1].items()
    assert "KFP_OPERATOR_LEADER_ELECTION_NAMESPACE" not in rendered.env()


# ---- the KFP token -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "mounted", "token_path"),
    [
        ({}, False, ""),
        ({"config": {"kfp": {"multiUser": True}}}, True, TOKEN_PATH),
        ({"config": {"kfp": {"multiUser": True, "tokenPath": "/var/run/kfp/jwt"}}}, True, "/var/run/kfp/jwt"),
        ({"config": {"kfp": {"multiUser": True}}, "kfpToken": {"enabled": False}}, False, ""),
        ({"kfpToken": {"enabled": True}}, True, TOKEN_PATH),
    ],
    ids=["single-user", "multi-user", "custom-path", "multi-user-opt-out", "opt-in"],
)
def test_kfp_token_is_projected_where_the_operator_reads_it(
    values: dict[str, Any], mounted: bool, token_path: str
) -> None:
    rendered = render(values)
    volume = rendered.volume("kfp-token")

    assert rendered.config["kfp"]["tokenPath"] == token_path
    if not mounted:
        assert volume is None and rendered.mount("kfp-token") is None
        return
    (source,) = volume["projected"]["sources"]
    directory, _, file = token_path.rpartition("/")
    assert source["serviceAccountToken"] == {
        "audience": "pipelines.kubeflow.org",
        "expirationSeconds": 7200,
        "path": file,
    }
    assert rendered.mount("kfp-token") == {"name": "kfp-token", "mountPath": directory, "readOnly": True}


# ---- RBAC shape ----------------------------------------------------------------------------------


def test_watch_namespaces_bind_the_cluster_role_in_those_namespaces_only(everything: Rendered) -> None:
    bindings = [b for b in everything.of_kind("RoleBinding") if b["roleRef"]["kind"] == "ClusterRole"]
    cluster_bindings = {b["roleRef"]["name"] for b in everything.of_kind("ClusterRoleBinding")}

    # Only what concerns metrics, whose reviews and URL are cluster-scoped, is bound cluster-wide.
    assert cluster_bindings == {"kfp-operator-metrics-auth", "kfp-operator-metrics-reader"}
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"]["name"] == everything.one("ClusterRole", "kfp-operator")["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kfp-operator", "namespace": "kfp-operator"}
        ]


def test_rbac_and_service_account_can_be_left_to_the_user() -> None:
    rendered = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}})

    assert rendered.kinds() == {"ConfigMap", "Deployment", "Service"}
    assert rendered.pod_spec["serviceAccountName"] == "existing"
    with pytest.raises(HelmError, match=r"serviceAccount\.name must name an existing ServiceAccount"):
        render({"serviceAccount": {"create": False}})


# ---- monitoring and availability -----------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(everything: Rendered) -> None:
    monitor = everything.one("ServiceMonitor")
    service = everything.one("Service")
    (endpoint,) = monitor["spec"]["endpoints"]

    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert (
        service["spec"]["selector"].items()
        <= everything.deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_service_monitor_scrapes_https_with_prometheus_token(everything: Rendered) -> None:
    (endpoint,) = everything.one("ServiceMonitor")["spec"]["endpoints"]
    (self_signed,) = render({"serviceMonitor": {"enabled": True}}).one("ServiceMonitor")["spec"]["endpoints"]

    for scrape in (endpoint, self_signed):
        assert scrape["scheme"] == "https"
        assert scrape["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "kfp-operator-metrics-tls", "key": "ca.crt"}},
        "serverName": "kfp-operator-metrics.kfp-operator.svc",
    }
    assert self_signed["tlsConfig"] == {"insecureSkipVerify": True}


def test_service_monitor_can_take_its_token_from_a_secret() -> None:
    secret = {"name": "metrics-scraper-token", "key": "token"}
    rendered = render({"serviceMonitor": {"enabled": True, "tokenSecret": secret}})

    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": secret}
    assert "bearerTokenFile" not in endpoint
    assert endpoint["scheme"] == "https"


def test_service_monitor_tls_config_can_be_given() -> None:
    tls = {"ca": {"configMap": {"name": "cluster-ca", "key": "ca.crt"}}, "serverName": "metrics.example"}
    rendered = render({"serviceMonitor": {"enabled": True, "tlsConfig": tls}})

    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == tls


def test_plain_http_metrics_drop_https_and_the_metrics_roles() -> None:
    rendered = render(
        {
            "serviceMonitor": {"enabled": True, "tokenSecret": {"name": "scraper", "key": "token"}},
            "config": {"metrics": {"secure": False}},
        }
    )

    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    assert {"scheme", "bearerTokenFile", "authorization", "tlsConfig"}.isdisjoint(endpoint)
    assert not any("metrics" in r["metadata"]["name"] for r in rendered.of_kind("ClusterRole"))
    assert [b["metadata"]["name"] for b in rendered.of_kind("ClusterRoleBinding")] == ["kfp-operator"]


def test_metrics_roles_review_tokens_and_let_the_readers_in(everything: Rendered) -> None:
    auth = everything.one("ClusterRole", "kfp-operator-metrics-auth")
    reader = everything.one("ClusterRole", "kfp-operator-metrics-reader")
    auth_binding = everything.one("ClusterRoleBinding", "kfp-operator-metrics-auth")
    reader_binding = everything.one("ClusterRoleBinding", "kfp-operator-metrics-reader")

    assert auth["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]
    assert auth_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kfp-operator", "namespace": "kfp-operator"}
    ]
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert reader_binding["roleRef"]["name"] == "kfp-operator-metrics-reader"
    assert reader_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}
    ]
    users = render({"rbac": {"metricsReaders": [{"kind": "User", "name": "alice"}]}})
    assert users.one("ClusterRoleBinding", "kfp-operator-metrics-reader")["subjects"] == [
        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    assert "kfp-operator-metrics-reader" not in {
        b["metadata"]["name"] for b in render().of_kind("ClusterRoleBinding")
    }


@pytest.mark.parametrize(
    ("cert_dir", "mounted_at"),
    [("", "/var/run/secrets/kfp-operator/metrics-cert"), ("/etc/metrics-tls", "/etc/metrics-tls")],
)
def test_the_metrics_certificate_secret_is_mounted_where_the_operator_reads_it(
    cert_dir: str, mounted_at: str
) -> None:
    rendered = render(
        {"metricsCertificate": {"secretName": "metrics-tls"}, "config": {"metrics": {"certDir": cert_dir}}}
    )

    assert rendered.config["metrics"]["certDir"] == mounted_at
    assert rendered.volume("metrics-cert") == {
        "name": "metrics-cert",
        "secret": {"secretName": "metrics-tls", "defaultMode": 0o440},
    }
    assert rendered.mount("metrics-cert") == {
        "name": "metrics-cert",
        "mountPath": mounted_at,
        "readOnly": True,
    }


def test_without_a_secret_the_certificate_is_self_signed(default: Rendered) -> None:
    plain = render(
        {"metricsCertificate": {"secretName": "metrics-tls"}, "config": {"metrics": {"secure": False}}}
    )

    for rendered in (default, plain):
        assert rendered.config["metrics"]["certDir"] == ""
        assert rendered.volume("metrics-cert") is None and rendered.mount("metrics-cert") is None


def test_dashboard_config_map_is_found_by_the_grafana_sidecar(everything: Rendered) -> None:
    config_map = everything.one("ConfigMap", "kfp-operator-dashboard")

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["kfp-operator.json"]) == json.loads(
        (CHART / "dashboards" / "kfp-operator.json").read_text()
    )
    elsewhere = render({"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}})
    assert elsewhere.one("ConfigMap", "kfp-operator-dashboard")["metadata"]["namespace"] == "monitoring"


def test_pod_disruption_budget_uses_one_of_its_bounds(everything: Rendered) -> None:
    by_max = render({"podDisruptionBudget": {"enabled": True, "minAvailable": None, "maxUnavailable": 1}})

    assert everything.one("PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert by_max.one("PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": by_max.deployment["spec"]["selector"]["matchLabels"]},
    }
    with pytest.raises(HelmError, match="set minAvailable or maxUnavailable"):
        render({"podDisruptionBudget": {"enabled": True, "minAvailable": None}})


# ---- NOTES.txt -----------------------------------------------------------------------------------


def test_notes_tell_the_user_what_to_do_next(control_plane: ControlPlane, monitoring_crds: None) -> None:
    values = merge(ALL_FEATURES, {"replicaCount": 1})
    # helm only renders NOTES.txt when installing; a client-side dry run still asks the API server
    # for its version.
    notes = helm(
        "install", "kfp-operator", str(CHART), "--namespace", "kfp-operator", "--dry-run=client",
        "--kubeconfig", str(control_plane.kubeconfig), "--values", "-", stdin=yaml.safe_dump(values),
    ).split("NOTES:", 1)[1]  # fmt: skip

    for expected in (
        "kubectl -n kfp-operator rollout status deployment/kfp-operator",
        "kubectl create -n team-a -f examples/run.yaml",
        "kubectl get runs -n team-a",
        "kubectl describe run -n team-a <name>",
        "service/kfp-operator-metrics 8080",
        "https://localhost:8080/metrics",
        "bind ClusterRole kfp-operator-metrics-reader to your Prometheus",
        "ServiceMonitor",
        "A PrometheusRule (kfp-operator) has the operator's alerts",
        "kfp-operator-dashboard",
        "system:serviceaccount:kfp-operator:kfp-operator",
        "handles Runs in team-a, team-b only",
        "a PodDisruptionBudget with a single replica",
        "kubectl apply --server-side --force-conflicts -f charts/kfp-operator/crds/",
    ):
        assert expected in notes, expected


# ---- credentials from Secrets ----------------------------------------------------------------------


def documented_values(heading: str) -> dict[str, Any]:
    """The values.yaml example under ``heading`` in the installation guide."""
    text = (Path(__file__).parents[2] / "docs/installation.md").read_text()
    section = text.split(heading, 1)[1]
    block = section.split("```yaml\n# values.yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_the_documented_sink_credentials_are_mounted_where_the_configuration_reads_them(
    tmp_path: Path,
) -> None:
    values = documented_values("### Event sinks with credentials")
    rendered = render(values)
    loaded = load_operator_config(rendered, tmp_path)

    volume = rendered.volume("sinks")
    mount = rendered.mount("sinks")
    assert volume is not None and volume["secret"]["secretName"] == "kfp-operator-sinks"
    assert mount is not None and mount["readOnly"] is True
    [audit] = loaded.events.http.sinks
    files = [
        audit.url_file,
        audit.headers_file,
        audit.ca_file,
        loaded.events.nats.creds_file,
        loaded.events.nats.ca_file,
    ]
    assert all(Path(f).parent == Path(mount["mountPath"]) for f in files)
    assert audit.name == "audit" and not audit.url
