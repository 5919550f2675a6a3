"""The Dockerfile and its build context, read without building (tests/image/test_image.py builds
and runs the image)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.image.dockerfile import PROJECT_ROOT, context_files, dockerignore_rules, excluded, stages

PRODUCT_PACKAGES = ("controller", "reconcilers", "kfp_operator")


def test_image_is_built_in_a_builder_stage_and_runs_unprivileged() -> None:
    builder, final = stages()

    assert builder.name == "builder"
    assert builder.base == final.base == "${PYTHON_IMAGE}"
    assert any("pip wheel --wheel-dir /wheels ." in run for run in builder.all("RUN"))
    assert final.all("COPY") == ["--from=builder /opt/kfp-operator /opt/kfp-operator"]
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    assert final.all("ENTRYPOINT") == ['["kfp-operator"]']
    assert not any(re.search(r"apt-get|apk |gcc|make|pip (install|wheel)", run) for run in final.all("RUN"))


def test_the_build_secret_is_used_by_the_builder_only() -> None:
    """The CA bundle passed as a secret serves the downloads; the final stage never sees it."""
    builder, final = stages()

    downloads = [run for run in builder.all("RUN") if "pip install" in run or "pip wheel" in run]
    offline = [run for run in downloads if "--no-index" in run]
    for run in set(downloads) - set(offline):
        assert run.startswith("--mount=type=secret,id=ca-certificates,"), run
    assert not [run for run in final.all("RUN") if "--mount" in run]


def test_the_image_is_labelled_with_its_version() -> None:
    final = stages()[-1]

    assert 'VERSION=""' in final.all("ARG")
    assert any('org.opencontainers.image.version="${VERSION}"' in label for label in final.all("LABEL"))


def test_build_context_holds_the_product_sources_and_nothing_else() -> None:
    files = set(context_files())
    roots = {f.split("/")[0] for f in files}

    # Not the local stack (kfp_devstack): it is for development and tests only.
    assert roots == {"pyproject.toml", "README.md", *PRODUCT_PACKAGES}
    assert {"kfp_operator/__main__.py", "controller/__init__.py", "reconcilers/__init__.py"} <= files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("controller/kube.py", True),
        ("reconcilers/run/reconciler.py", True),
        ("kfp_devstack/emulator/scenarios.py", False),
        ("controller/__pycache__/kube.cpython-311.pyc", False),
        ("reconcilers/run.pyc", False),
        (".venv/bin/python", False),
        (".git/HEAD", False),
        (".dev/kubeconfig", False),
        ("tests/conftest.py", False),
        ("bench/__main__.py", False),
        ("charts/kfp-operator/values.yaml", False),
        ("Dockerfile", False),
    ],
)
def test_dockerignore_sends_sources_and_leaves_out_the_rest(path: str, sent: bool) -> None:
    assert excluded(path, dockerignore_rules()) is not sent


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    files = set(context_files())
    builder = stages()[0]

    for copy in builder.all("COPY"):
        *sources, _ = copy.split()
        for source in sources:
            source = source.rstrip("/")
            assert source in files or any(f.startswith(source + "/") for f in files), source


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_the_product_does_not_import_what_the_image_leaves_out() -> None:
    """The Dockerfile deletes kubernetes.aio, and the local stack is not in the build context."""
    for package in PRODUCT_PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            for module in imported_modules(path):
                assert not module.startswith(("kubernetes.aio", "kfp_devstack")), f"{path}: {module}"
