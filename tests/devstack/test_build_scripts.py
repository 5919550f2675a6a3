"""The build scripts in hack/, the modules they pin and kfp_devstack.binaries agree with each other.

Fast and offline: nothing is built and no server is started. A version bumped in a script but not
in its go.mod (or the reverse), a module file left out of a cache key, or a binary the Python side
expects under another name fails here instead of in a cold build minutes later.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfp_devstack import binaries
from kfp_devstack.binaries import PROJECT_ROOT, Binaries

HACK = PROJECT_ROOT / "hack"
K8S_SCRIPT = "build-k8s-bins.sh"
TOOLS_SCRIPT = "build-tools.sh"
BEXPR_SCRIPT = "build-bexpr-eval.sh"
WARNINGS_SCRIPT = "build-warning-parse.sh"

# script -> module directory -> (the script's version variable, the module it pins)
PINS = {
    K8S_SCRIPT: {
        "k8s-bins": ("K8S_VERSION", "k8s.io/kubernetes"),
        "helm": ("HELM_VERSION", "helm.sh/helm/v3"),
    },
    TOOLS_SCRIPT: {
        "nats-server": ("NATS_VERSION", "github.com/nats-io/nats-server/v2"),
        "promtool": ("PROMETHEUS_MODULE_VERSION", "github.com/prometheus/prometheus"),
    },
    BEXPR_SCRIPT: {
        "bexpr-eval": ("BEXPR_VERSION", "github.com/hashicorp/go-bexpr"),
    },
    WARNINGS_SCRIPT: {
        "warning-parse": ("APIMACHINERY_VERSION", "k8s.io/apimachinery"),
    },
}


def script_text(script: str) -> str:
    return (HACK / script).read_text()


def script_variable(script: str, name: str) -> str:
    (value,) = re.findall(rf'^{name}="([^"]+)"$', script_text(script), flags=re.M)
    return value


def required_version(module_dir: str, module: str) -> str:
    (version,) = re.findall(
        rf"^(?:require )?\s*{re.escape(module)} (\S+)$",
        (HACK / module_dir / "go.mod").read_text(),
        flags=re.M,
    )
    return version


def checked_binaries(script: str) -> set[str]:
    """The binaries whose presence the script checks before it trusts its cache."""
    return set(re.findall(r'\[ -x "\$out/([\w-]+)" \]', script_text(script)))


def test_every_module_directory_in_hack_is_built_by_one_script() -> None:
    module_dirs = {path.parent.name for path in HACK.glob("*/go.mod")}
    pinned = [module_dir for dirs in PINS.values() for module_dir in dirs]

    assert sorted(pinned) == sorted(module_dirs)


@pytest.mark.parametrize(("script", "module_dir"), [(s, d) for s, dirs in PINS.items() for d in dirs])
def test_the_script_pins_the_version_its_module_requires(script: str, module_dir: str) -> None:
    variable, module = PINS[script][module_dir]

    assert script_variable(script, variable) == required_version(module_dir, module)


@pytest.mark.parametrize(("script", "module_dir"), [(s, d) for s, dirs in PINS.items() for d in dirs])
def test_the_cache_key_covers_the_module_files(script: str, module_dir: str) -> None:
    (key_call,) = re.findall(r'key="\$\(cache_key (.*?)\)"', script_text(script), flags=re.S)

    assert f'"$here/{module_dir}/go.mod"' in key_call
    assert f'"$here/{module_dir}/go.sum"' in key_call


@pytest.mark.parametrize(("script", "module_dir"), [(s, d) for s, dirs in PINS.items() for d in dirs])
def test_every_package_the_module_pins_is_built(script: str, module_dir: str) -> None:
    if not (HACK / module_dir / "tools.go").exists():
        # A module of our own (a main package): the script builds the module's directory.
        assert f'cd "$here/{module_dir}"' in script_text(script) and "go build" in script_text(script)
        return
    imports = re.findall(r'_ "([^"]+)"', (HACK / module_dir / "tools.go").read_text())

    assert imports
    assert [package for package in imports if f" {package}" not in script_text(script)] == []


def test_binaries_names_the_files_the_scripts_check() -> None:
    located = Binaries(Path("/k8s"), Path("/tools"))
    paths = [getattr(located, name) for name, value in vars(Binaries).items() if isinstance(value, property)]

    assert {p.name for p in paths if p.parent == Path("/k8s")} == checked_binaries(K8S_SCRIPT)
    assert {p.name for p in paths if p.parent == Path("/tools")} == checked_binaries(TOOLS_SCRIPT)


@pytest.fixture
def fresh_locate() -> Iterator[None]:
    """``locate()`` caches its answer for the process: start and end with a cleared cache."""
    binaries.locate.cache_clear()
    yield
    binaries.locate.cache_clear()


def test_the_override_directory_holds_every_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_locate: None
) -> None:
    monkeypatch.setenv(binaries.BIN_DIR_ENV, str(tmp_path))

    located = binaries.locate()

    assert located.nats_server == tmp_path / "nats-server"
    assert located.promtool == tmp_path / "promtool"
    assert located.kube_apiserver == tmp_path / "kube-apiserver"


@pytest.mark.parametrize("script", sorted(path.name for path in HACK.glob("*.sh")))
def test_the_scripts_parse(script: str) -> None:
    assert subprocess.run(["bash", "-n", str(HACK / script)], check=False).returncode == 0


# ---- hack/check-prereqs.sh ----------------------------------------------------------------------


def fake(directory: Path, name: str, script: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(f"#!/bin/sh\n{script}\n")
    (directory / name).chmod(0o755)


def check_prereqs(path: str, *what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(HACK / "check-prereqs.sh"), *what],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def newest_go_line() -> str:
    lines = [re.search(r"^go (\S+)$", p.read_text(), flags=re.M) for p in HACK.glob("*/go.mod")]
    return max((m.group(1) for m in lines if m), key=lambda v: tuple(int(n) for n in v.split(".")))


def test_check_prereqs_is_silent_when_python_and_go_are_there() -> None:
    result = check_prereqs(os.environ["PATH"])

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_prereqs_names_everything_missing_in_one_line(tmp_path: Path) -> None:
    # Shadow the real ones: a Python too old and a Go older than the pinned modules ask for.
    fake(tmp_path / "bin", "python3", 'case "$2" in *platform*) echo 3.10.4 ;; *) exit 1 ;; esac')
    fake(tmp_path / "bin", "go", "echo go1.25.0")

    result = check_prereqs(f"{tmp_path / 'bin'}:{os.environ['PATH']}")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert "Python 3.11+ (python3 is 3.10.4)" in result.stderr
    assert f"Go {newest_go_line()}+ (go is 1.25.0)" in result.stderr


def test_check_prereqs_says_when_go_is_absent() -> None:
    without_go = os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "go").exists()
    )

    result = check_prereqs(without_go, "go")

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"missing prerequisite: Go {newest_go_line()}+ (no go on PATH). Install it, then run make again."
    )
