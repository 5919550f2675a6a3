"""The user's example end to end, by an operator holding exactly the permissions the Helm chart grants:
its ServiceAccount's token, its ClusterRole bound in the watched namespace, its Lease Role, and the
configuration its ConfigMap renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes

from kfp_devstack.controlplane import ControlPlane
from tests.chart.chartlib import parse, render_text
from tests.chart.dashboard import load_dashboard, missing_series
from tests.lifecycle.harness import OperatorProcess, World
from tests.lifecycle.seed import run_seed_scenario


def test_the_seed_example_runs_with_the_charts_permissions(
    world: World,
    control_plane: ControlPlane,
    api_client: kubernetes.client.ApiClient,
    service_account_token,
    make_namespace,
    tmp_path: Path,
) -> None:
    release_namespace = make_namespace("kfp-operator")
    manifests = render_text(
        {"fullnameOverride": release_namespace, "config": {"watchNamespaces": [world.namespace]}},
        namespace=release_namespace,
    )
    rendered = parse(manifests)
    for obj in rendered.objects:
        kubernetes.utils.create_from_dict(api_client, obj, namespace=obj["metadata"].get("namespace"))
    service_account = rendered.pod_spec["serviceAccountName"]
    kubeconfig = control_plane.token_kubeconfig(
        service_account_token(release_namespace, service_account), tmp_path / "sa.kubeconfig"
    )
    # The chart's configuration, pointed at this test's KFP, ML Metadata and NATS.
    config: dict[str, Any] = rendered.config
    config["kfp"]["endpoint"] = world.emulator.url
    config["mlmd"] = {"host": world.emulator.mlmd_host, "port": world.emulator.mlmd_port}
    config["events"]["nats"] = {"url": world.nats_url, "subject": world.subject, "jetstream": True}
    config["pollInterval"] = "0.5s"

    def start_operator() -> OperatorProcess:
        # In the cluster the chart sets this from the pod's namespace (the downward API).
        env = {"KFP_OPERATOR_LEADER_ELECTION_NAMESPACE": release_namespace}
        operator = OperatorProcess(config, kubeconfig, tmp_path, env=env)
        world.operators.append(operator)
        return operator.start()

    operator = run_seed_scenario(world, start_operator)

    forbidden = operator.metric("rest_client_requests_total", code="403")
    assert forbidden == 0, operator.tail(100)
    assert operator.metric("leader_election_master_status") == 1
    # Every series the chart's dashboard queries is exported by the running operator.
    assert missing_series(load_dashboard(), operator.exposition()) == set()
