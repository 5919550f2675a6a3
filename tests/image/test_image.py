"""The operator image, built for real from the Dockerfile (tests/image/build.py) and run as the
chart runs its pod (tests/image/container.py): its user, its read-only root and volumes, its
arguments and environment, and the chart's permissions, against the local stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from kfp_devstack.controlplane import ControlPlane
from kfp_operator import settings as operator_config
from tests.chart.chartlib import parse, render, render_text
from tests.image.build import BuiltImage
from tests.image.conftest import BUILD_TIMEOUT
from tests.image.container import ContainerRun, ImageOperator, PodShape
from tests.lifecycle.harness import World
from tests.lifecycle.seed import run_seed_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
PROBE_DIR = "/etc/kfp-operator-probe"
# The operator's virtual environment, the image's own layer: its dependencies are most of it.
VENV_BUDGET_BYTES = 200 * 1024 * 1024


def project_version() -> str:
    return str(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"])


@pytest.fixture(scope="module")
def chart_pod() -> PodShape:
    """The pod of the chart's default values, installed in the namespace kfp-operator."""
    return PodShape.of(render(), "kfp-operator")


@pytest.fixture(scope="module")
def probe(
    image: BuiltImage, chart_pod: PodShape, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """What tests/image/probe.py reports from within the image, run in the chart's pod shape."""
    work_dir = tmp_path_factory.mktemp("probe")
    probe_dir = work_dir / "probe"
    probe_dir.mkdir()
    shutil.copy(PROBE, probe_dir / PROBE.name)
    run = ContainerRun(image, chart_pod, work_dir, extra_mounts=[(probe_dir, PROBE_DIR)])
    try:
        process = run.start(
            [f"{PROBE_DIR}/{PROBE.name}"],
            entrypoint=["python3"],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            release_root=False,  # its checks of the root's mode must not race the remount
        )
        assert process.stdout is not None and process.stdin is not None
        output = []
        for raw in process.stdout:  # buildah's own messages, if any, come first
            line = raw.decode(errors="replace")
            output.append(line)
            if line.startswith("{"):
                break
        assert output and output[-1].startswith("{"), "".join(output)
        run.release_root()
        process.stdin.close()  # the probe ends; buildah cleans up and exits with its status
        assert process.wait(timeout=60) == 0, "".join(output) + process.stdout.read().decode(errors="replace")
        yield json.loads(output[-1])
    finally:
        run.remove()


def runtime_closure(distributions: Mapping[str, Mapping[str, Any]], root: str) -> set[str]:
    """The distributions ``root`` needs, without extras, following the requirements installed."""
    by_name: dict[str, Mapping[str, Any]] = {canonicalize_name(n): d for n, d in distributions.items()}
    needed: set[str] = set()
    pending: list[tuple[str, frozenset[str]]] = [(canonicalize_name(root), frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.add(name)
        for text in by_name.get(name, {}).get("requires", []):
            requirement = Requirement(text)
            if requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in extras | {""}
            ):
                pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


def test_the_image_holds_the_operator_and_its_runtime_dependencies_only(probe: dict[str, Any]) -> None:
    installed = {canonicalize_name(name) for name in probe["distributions"]}

    assert installed == runtime_closure(probe["distributions"], "kfp-operator")
    assert probe["modules"] == {
        "kfp_operator": True,
        "controller": True,
        "reconcilers": True,
        # The local stack and the tests' tools are for development only; kubernetes.aio is dropped.
        "kfp_devstack": False,
        "kubernetes.aio": False,
        "pytest": False,
    }
    assert "kfp-operator" in probe["scripts"]
    assert not {"kfp-devstack", "pip", "pip3"} & set(probe["scripts"])
    assert probe["venv_bytes"] < VENV_BUDGET_BYTES, f"{probe['venv_bytes'] / 2**20:.0f} MiB"


def test_the_command_in_the_image_is_the_projects(probe: dict[str, Any]) -> None:
    assert probe["version"] == f"kfp-operator {project_version()}"
    for spec in operator_config.KEYS:
        assert spec.flag in probe["help"], spec.flag
    assert probe["python"].startswith("3.11.")


def test_the_image_runs_as_the_charts_user_with_a_read_only_root(
    probe: dict[str, Any], chart_pod: PodShape
) -> None:
    assert (probe["uid"], probe["gid"]) == (chart_pod.user, chart_pod.group) == (65532, 65532)
    assert chart_pod.read_only_root
    # Only the chart's emptyDir takes writes: not the root, not the ConfigMap's volume.
    assert {path for path, ok in probe["writable"].items() if ok} == {"/tmp"}


def test_the_image_says_what_it_is_and_how_it_runs(image: BuiltImage) -> None:
    config = image.config()

    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["kfp-operator"]
    assert config["Labels"]["org.opencontainers.image.version"] == project_version()
    assert config["Labels"]["org.opencontainers.image.title"] == "kfp-operator"
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    assert set(config["ExposedPorts"]) == {"8080/tcp", "8081/tcp"}


def test_the_seed_example_runs_in_the_image_as_the_chart_runs_it(
    image: BuiltImage,
    world: World,
    control_plane: ControlPlane,
    api_client: kubernetes.client.ApiClient,
    service_account_token: Callable[..., str],
    make_namespace: Callable[..., str],
    tmp_path: Path,
) -> None:
    release_namespace = make_namespace("kfp-operator")
    rendered = parse(
        render_text(
            {"fullnameOverride": release_namespace, "config": {"watchNamespaces": [world.namespace]}},
            namespace=release_namespace,
        )
    )
    for obj in rendered.objects:
        if obj["kind"] != "Deployment":  # the test runs the pod itself
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
    pod = PodShape.of(rendered, release_namespace)
    operators: list[ImageOperator] = []

    def start_operator() -> ImageOperator:
        operator = ImageOperator(image, pod, config, kubeconfig, tmp_path)
        operators.append(operator)
        world.operators.append(operator)
        return operator.start()

    try:
        operator = run_seed_scenario(world, start_operator)

        assert operator.metric("rest_client_requests_total", code="403") == 0, operator.tail(100)
        assert operator.metric("leader_election_master_status") == 1
        assert operator.stop() == 0, operator.tail()
    finally:
        for started in operators:
            started.remove()
