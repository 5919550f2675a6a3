"""Fixtures of the chart tests: kubectl with manifests on stdin, the Prometheus Operator CRDs, installs."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.waiting import wait_until
from tests.chart.chartlib import ALL_FEATURES, Installed, KubectlIn, merge, parse, render_text

# The Prometheus Operator's CRDs the chart uses, vendored for validation by the API server.
MONITORING_CRDS = [
    Path(__file__).with_name(name) for name in ("servicemonitor-crd.yaml", "prometheusrule-crd.yaml")
]


@pytest.fixture(scope="session")
def kubectl_in(control_plane: ControlPlane) -> KubectlIn:
    """``run(manifests, *args, check=True)``: the built kubectl with ``manifests`` on stdin."""

    def run(manifests: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(control_plane.binaries.kubectl), f"--kubeconfig={control_plane.kubeconfig}", *args],
            input=manifests,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def monitoring_crds(api_client: kubernetes.client.ApiClient) -> None:
    """Installs the ServiceMonitor and PrometheusRule CRDs once, so those objects can be validated
    and applied."""
    api = kubernetes.client.ApiextensionsV1Api(api_client)
    for path in MONITORING_CRDS:
        body = yaml.safe_load(path.read_text())
        try:
            api.create_custom_resource_definition(body)
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise

        def established(name: str = body["metadata"]["name"]) -> bool:
            crd = api.read_custom_resource_definition(name)
            return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

        wait_until(established, timeout=30, message=f"{path.name} to be Established")


RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}


@pytest.fixture(scope="session")
def install(
    kubectl_in: KubectlIn, make_namespace: Callable[..., str], monitoring_crds: None
) -> Callable[..., Installed]:
    """``install(values)``: applies the chart with ``values`` for real in a fresh namespace that
    enforces the restricted Pod Security Standard. Cluster-scoped names are unique per install."""

    def apply(values: dict[str, Any]) -> Installed:
        namespace = make_namespace("kfp-operator", labels=RESTRICTED)
        values = merge(values, {"fullnameOverride": namespace})
        manifests = render_text(values, namespace=namespace, include_crds=True)
        result = kubectl_in(manifests, "apply", "--server-side", "--field-manager=helm", "-f", "-")
        assert "Warning" not in result.stderr, result.stderr
        return Installed(namespace, manifests, parse(manifests))

    return apply


@pytest.fixture(scope="session")
def installed(install: Callable[..., Installed]) -> Installed:
    """The chart with every optional feature but watchNamespaces, installed once per session."""
    values = copy.deepcopy(ALL_FEATURES)
    del values["config"]["watchNamespaces"]
    return install(values)
