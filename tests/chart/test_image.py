"""The container image, tested without an image engine.

The Dockerfile's build steps are replayed on the build context that .dockerignore lets through:
build the wheels, install them into a fresh virtual environment with no index, run the command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kfp_operator import settings as operator_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"


# ---- the Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            result.append(Stage(base.strip(), name.strip(), []))
        elif result:
            result[-1].instructions.append((instruction, args.strip()))
    return result


def test_image_is_built_in_a_builder_stage_and_runs_unprivileged() -> None:
    builder, final = stages()

    assert builder.name == "builder"
    assert any("pip wheel --wheel-dir /wheels ." in run for run in builder.all("RUN"))
    assert final.all("COPY") == ["--from=builder /opt/kfp-operator /opt/kfp-operator"]
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    assert final.all("ENTRYPOINT") == ['["kfp-operator"]']
    assert not any(re.search(r"apt-get|apk |gcc|make|pip (install|wheel)", run) for run in final.all("RUN"))


# ---- the build context ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match with ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str], str]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((include, _pattern_regex(pattern), pattern))
    return rules


def excluded(relative: str, rules: list[tuple[bool, re.Pattern[str], str]]) -> bool:
    """Whether the build context leaves ``relative`` out: the last rule matching it or a parent wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for include, regex, _ in rules:
        if any(regex.fullmatch(c) for c in candidates):
            verdict = not include
    return verdict


def context_files(root: Path = PROJECT_ROOT) -> Iterator[str]:
    """The files a build of ``root`` sends, as docker does after applying .dockerignore."""
    rules = dockerignore_rules()
    reincluded_roots = {pattern.split("/")[0] for include, _, pattern in rules if include}
    for directory, subdirs, files in os.walk(root):
        relative_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        subdirs[:] = [
            d
            for d in subdirs
            if not excluded(prefix + d, rules) or (prefix + d).split("/")[0] in reincluded_roots
        ]
        for name in files:
            if not excluded(prefix + name, rules):
                yield prefix + name


def test_build_context_holds_the_package_sources_and_nothing_else() -> None:
    files = set(context_files())
    roots = {f.split("/")[0] for f in files}

    assert roots == {
        "pyproject.toml",
        "README.md",
        "controller",
        "reconcilers",
        "kfp_operator",
        "kfp_devstack",
    }
    assert {
        "kfp_operator/__main__.py",
        "controller/__init__.py",
        "reconcilers/__init__.py",
        "kfp_devstack/__init__.py",
    } <= files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("controller/kube.py", True),
        ("kfp_devstack/emulator/scenarios.py", True),
        ("controller/__pycache__/kube.cpython-311.pyc", False),
        ("reconcilers/run.pyc", False),
        (".venv/bin/python", False),
        (".git/HEAD", False),
        (".dev/kubeconfig", False),
        ("tests/conftest.py", False),
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


# ---- the install steps --------------------------------------------------------------------------------


@pytest.mark.slow
def test_wheels_installed_into_a_fresh_environment_give_a_working_command(tmp_path: Path) -> None:
    """The builder stage's steps: wheels of everything, then an install that may use nothing else."""
    context = tmp_path / "context"
    for relative in context_files():
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / relative, context / relative)
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"

    def run(*argv: str | Path) -> str:
        result = subprocess.run(
            [str(a) for a in argv],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{' '.join(map(str, argv))}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    run(*pip, "wheel", "--quiet", "--wheel-dir", wheels, context)
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(*pip, "--python", venv / "bin" / "python", "install", "--quiet", "--no-compile", "--no-index",
        "--find-links", wheels, "kfp-operator")  # fmt: skip

    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert run(venv / "bin" / "kfp-operator", "--version").strip() == f"kfp-operator {version}"
    usage = run(venv / "bin" / "kfp-operator", "--help")
    for spec in operator_config.KEYS:
        assert spec.flag in usage, spec.flag
    location = run(venv / "bin" / "python", "-c", "import controller; print(controller.__file__)")
    assert Path(location.strip()).is_relative_to(venv)
