"""The rendered chart is valid Kubernetes: offline against the 1.36 schemas, then by the API server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart.chartlib import ALL_FEATURES, KUBE_VERSION, KubectlIn, merge, parse, render, render_text

CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}  # no schema offline; the API server validates them below

FEATURES = {
    "defaults": {},
    "all-features": ALL_FEATURES,
    # The scrape's token from a Secret instead of Prometheus's token file.
    "token-secret": merge(
        ALL_FEATURES, {"serviceMonitor": {"tokenSecret": {"name": "metrics-scraper-token", "key": "token"}}}
    ),
}


@pytest.mark.parametrize("values", FEATURES.values(), ids=FEATURES.keys())
def test_builtin_kinds_are_valid_for_kubernetes_1_36(values: dict[str, Any]) -> None:
    rendered = render(values, include_crds=True)
    checked = set()

    for obj in rendered.objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        checked.add(obj["kind"])

    assert "CustomResourceDefinition" in checked and "Deployment" in checked


def test_offline_validation_catches_an_unknown_field() -> None:
    deployment = render({"extraEnv": [{"name": "A", "vaule": "typo"}]}).deployment

    with pytest.raises(kubernetes_validate.ValidationError, match="vaule"):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def server_dry_run(kubectl_in: KubectlIn, manifests: str) -> Any:
    return kubectl_in(
        manifests,
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "--field-manager=kfp-operator-chart-test",
        "-o",
        "yaml",
        "-f",
        "-",
        check=False,
    )


@pytest.mark.parametrize("values", FEATURES.values(), ids=FEATURES.keys())
def test_api_server_accepts_everything_with_strict_field_validation(
    values: dict[str, Any],
    kubectl_in: KubectlIn,
    make_namespace: Callable[..., str],
    monitoring_crds: None,
) -> None:
    namespace = make_namespace("chart")
    watched = [make_namespace("watched") for _ in values.get("config", {}).get("watchNamespaces", [])]
    values = merge(values, {"fullnameOverride": namespace})
    if watched:
        values = merge(values, {"config": {"watchNamespaces": watched}})
    manifests = render_text(values, namespace=namespace, include_crds=True)

    result = server_dry_run(kubectl_in, manifests)

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    accepted = [o for o in yaml.safe_load(result.stdout)["items"]]
    assert sorted(o["kind"] for o in accepted) == sorted(o["kind"] for o in parse(manifests).objects)


def test_server_side_validation_catches_an_unknown_field(
    kubectl_in: KubectlIn, make_namespace: Callable[..., str], monitoring_crds: None
) -> None:
    namespace = make_namespace("chart")
    values = {
        "fullnameOverride": namespace,
        "serviceMonitor": {"enabled": True, "relabelings": [{"sourceLabel": "typo"}]},
    }

    result = server_dry_run(kubectl_in, render_text(values, namespace=namespace))

    assert result.returncode != 0
    assert ".spec.endpoints[0].relabelings[0].sourceLabel: field not declared in schema" in result.stderr
