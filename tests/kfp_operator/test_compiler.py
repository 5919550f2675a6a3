"""The compiler script of compile Jobs, run as the Job runs it: a separate Python process with the
user's code on its path, handing the result to an API server through a ConfigMap.

The KFP SDK and TFX are stand-ins here (the real KFP SDK compiles in tests/lifecycle/test_pipelines.py;
TFX does not install on this machine's Python): they record what the script asks of them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kfp_operator import compiler

SCRIPT = Path(compiler.__file__)

FAKE_KFP = {
    "kfp/__init__.py": "",
    "kfp/compiler.py": """
import json

class Compiler:
    def compile(self, pipeline_func, package_path):
        pipeline_func.compiled_into(package_path)
""",
}

FAKE_TFX = {
    "tfx/__init__.py": "",
    "tfx/orchestration/__init__.py": "",
    "tfx/orchestration/pipeline.py": """
class Pipeline:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
""",
    "tfx/orchestration/kubeflow/__init__.py": "",
    "tfx/orchestration/kubeflow/v2/__init__.py": "",
    "tfx/orchestration/kubeflow/v2/kubeflow_v2_dag_runner.py": """
import json, os

class KubeflowV2DagRunnerConfig:
    def __init__(self, default_image):
        self.default_image = default_image

class KubeflowV2DagRunner:
    def __init__(self, config, output_dir, output_filename):
        self.config, self.path = config, os.path.join(output_dir, output_filename)

    def run(self, pipeline):
        args = dict(pipeline.kwargs, components=[str(c) for c in pipeline.kwargs["components"]])
        with open(self.path, "w") as out:
            json.dump({"pipelineSpec": {"image": self.config.default_image, "args": args}}, out)
""",
}

USER_CODE = {
    "pipelines.py": """
import os

class GraphComponent:
    def compiled_into(self, path):
        with open(path, "w") as out:
            out.write("pipelineInfo: {name: good}\\nteam: " + os.environ.get("TEAM", "") + "\\n")

good = GraphComponent()

def plain():
    pass

def components():
    print("making components for", os.environ["TEAM"])
    return ["ExampleGen", "Trainer"]

def nothing():
    return []
""",
    "broken.py": "raise RuntimeError('the module is broken')\n",
    "needs_missing.py": "import not_installed_anywhere\n",
}


class ApiServer:
    """Takes ConfigMap creations, as the API server would, or refuses them with ``refuse``."""

    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any], str]] = []
        self.refuse: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.refuse:
                    self.send_response(server.refuse)
                    self.end_headers()
                    self.wfile.write(b'{"message": "forbidden"}')
                    return
                server.created.append((self.path, body, self.headers["Authorization"]))
                self.send_response(201)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.close()


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run_compiler(tmp_path: Path, api: ApiServer, *args: str) -> tuple[int, str]:
    """Runs compile.py as the Job's container: the user's code is the working directory."""
    image = tmp_path / "image"
    packages = tmp_path / "site-packages"
    write_tree(image, USER_CODE)
    write_tree(packages, {**FAKE_KFP, **FAKE_TFX})
    installed = tmp_path / "kfp-compiler"
    installed.mkdir(exist_ok=True)
    assert compiler.install([str(installed)]) == 0
    (tmp_path / "token").write_text("the-token\n")
    process = subprocess.run(
        [sys.executable, str(installed / "compile.py"), *args, "--output=penguin-compile-1"],
        cwd=image,
        env={
            "PYTHONPATH": str(packages),
            "KFP_COMPILER_API_URL": api.url,
            "KFP_COMPILER_TOKEN_FILE": str(tmp_path / "token"),
            "KFP_COMPILER_JOB_UID": "job-uid-1",
            "KFP_COMPILER_NAMESPACE": "team-a",
            "TEAM": "penguins",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return process.returncode, process.stdout + process.stderr


def handed_back(api: ApiServer) -> dict[str, str]:
    [(path, body, authorization)] = api.created
    assert path == "/api/v1/namespaces/team-a/configmaps"
    assert authorization == "Bearer the-token"
    assert body["metadata"]["name"] == "penguin-compile-1"
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "penguin-compile-1", "uid": "job-uid-1"}
    ]
    data: dict[str, str] = body["data"]
    return data


def error_of(api: ApiServer) -> dict[str, str]:
    data = handed_back(api)
    assert list(data) == ["error"]
    error: dict[str, str] = json.loads(data["error"])
    return error


def test_a_kfp_pipeline_is_compiled_and_handed_back_in_a_configmap(tmp_path: Path, api: ApiServer) -> None:
    code, output = run_compiler(tmp_path, api, "--framework=kfp", "--function=pipelines.good")
    assert code == 0, output
    assert handed_back(api) == {"pipeline.yaml": "pipelineInfo: {name: good}\nteam: penguins\n"}


@pytest.mark.parametrize(
    ("function", "reason", "says"),
    [
        ("pipelines.plain", "NotAPipeline", "pipelines.plain is a function"),
        ("pipelines.missing", "FunctionNotFound", "module pipelines has no 'missing'"),
        ("nowhere.pipeline", "ModuleNotFound", "no module named 'nowhere'"),
        ("broken.pipeline", "CompileFailed", "RuntimeError: the module is broken"),
        ("needs_missing.pipeline", "CompileFailed", "No module named 'not_installed_anywhere'"),
        ("no_dots", "FunctionNotFound", "is not module.function"),
    ],
)
def test_what_cannot_be_compiled_is_reported_with_a_reason(
    tmp_path: Path, api: ApiServer, function: str, reason: str, says: str
) -> None:
    code, output = run_compiler(tmp_path, api, "--framework=kfp", f"--function={function}")
    assert code == 1, output
    error = error_of(api)
    assert error["reason"] == reason
    assert says in error["message"]


def test_tfx_components_are_compiled_with_kubeflow_v2_dag_runner(tmp_path: Path, api: ApiServer) -> None:
    code, output = run_compiler(
        tmp_path,
        api,
        "--framework=tfx",
        "--function=pipelines.components",
        "--pipeline-name=team-a-penguin",
        "--image=ghcr.io/team/penguin:v1",
        "--beam-arg=project=p",
        "--beam-arg=region=eu",
    )
    assert code == 0, output
    compiled = json.loads(handed_back(api)["pipeline.yaml"])["pipelineSpec"]
    assert compiled["image"] == "ghcr.io/team/penguin:v1"
    assert compiled["args"] == {
        "pipeline_name": "team-a-penguin",
        "pipeline_root": "",
        "components": ["ExampleGen", "Trainer"],
        "enable_cache": False,
        "beam_pipeline_args": ["--project=p", "--region=eu"],
    }


def test_tfx_needs_components(tmp_path: Path, api: ApiServer) -> None:
    code, _ = run_compiler(tmp_path, api, "--framework=tfx", "--function=pipelines.nothing")
    assert code == 1
    error = error_of(api)
    assert error["reason"] == "NotAPipeline"
    assert "returned list" in error["message"]


def test_the_output_of_a_failed_compile_comes_back_with_the_error(tmp_path: Path, api: ApiServer) -> None:
    noisy = {"noisy.py": "print('loading noisy')\nraise ValueError('bad config')\n"}
    write_tree(tmp_path / "image", noisy)
    code, _ = run_compiler(tmp_path, api, "--framework=kfp", "--function=noisy.pipeline")
    assert code == 1
    assert "loading noisy" in error_of(api)["output"]


def test_when_the_api_server_refuses_the_job_fails_without_output(tmp_path: Path, api: ApiServer) -> None:
    api.refuse = 403
    code, output = run_compiler(tmp_path, api, "--framework=kfp", "--function=pipelines.good")
    assert code == 2
    assert "HTTP 403" in output
    assert api.created == []


def test_the_script_runs_on_the_pythons_of_tfx_images() -> None:
    """TFX images run Python 3.8 or later: the script must parse there (it is never imported there)."""
    ast.parse(SCRIPT.read_text(), feature_version=(3, 8))
