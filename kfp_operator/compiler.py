"""The pipeline compiler that runs inside a Pipeline's compile Job, in the user's image.

The Job's init container (the operator's image) runs ``python -m kfp_operator.compiler install
DIR``, which copies this file to ``DIR/compile.py`` in a volume shared with the main container;
the main container (the user's image) runs ``python3 DIR/compile.py --framework=kfp|tfx
--function=module.function --output=NAME ...``. So this file is self-contained: the standard
library only (it runs on Python 3.8 and later, as TFX images do), plus the KFP SDK or TFX that the
user's image brings.

It imports ``module.function`` (from the working directory or the image's packages), compiles it
(a KFP SDK ``@dsl.pipeline`` with ``kfp.compiler.Compiler``; TFX components with
``KubeflowV2DagRunner``, into KFP IR), and hands the result back through the API server, never
through logs: it creates the ConfigMap ``NAME`` in its namespace, owned by its Job, holding the
compiled spec under ``pipeline.yaml``, or under ``error`` a JSON ``{reason, message, output}``
(reasons: ``ModuleNotFound``, ``FunctionNotFound``, ``NotAPipeline``, ``CompileFailed``,
``OutputTooLarge``) and exits 1. Its ServiceAccount therefore needs ``create`` on ConfigMaps in
the namespace (docs/pipelines.md).

In a pod, the API server is ``KUBERNETES_SERVICE_HOST``/``PORT`` with the ServiceAccount's token
and CA; ``KFP_COMPILER_API_URL``, ``KFP_COMPILER_TOKEN_FILE`` and ``KFP_COMPILER_CA_FILE``
override them (the local stack's Job executor runs this script outside a pod).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import shutil
import ssl
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUTPUT_KEY = "pipeline.yaml"
ERROR_KEY = "error"
JOB_UID_ENV = "KFP_COMPILER_JOB_UID"
NAMESPACE_ENV = "KFP_COMPILER_NAMESPACE"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# A ConfigMap holds at most 1 MiB; leave room for its metadata.
MAX_OUTPUT_BYTES = 1000 * 1024
OUTPUT_TAIL = 4000
WRITE_ATTEMPTS = 5


class CompileFailure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["install"]:
        return install(argv[1:])
    parser = argparse.ArgumentParser(prog="compile.py", description="Compiles a pipeline into KFP IR.")
    parser.add_argument("--framework", choices=("kfp", "tfx"), required=True)
    parser.add_argument("--function", required=True, help="module.function")
    parser.add_argument("--output", required=True, help="the ConfigMap to write")
    parser.add_argument("--pipeline-name", default="", help="the pipeline's name (TFX)")
    parser.add_argument("--image", default="", help="the image the pipeline's components run (TFX)")
    parser.add_argument("--beam-arg", action="append", default=[], help="name=value (TFX)")
    args = parser.parse_args(argv)

    captured = io.StringIO()
    data: dict[str, str]
    with _tee(captured):
        try:
            data = {OUTPUT_KEY: compile_pipeline(args)}
            code = 0
        except CompileFailure as failure:
            print(f"compile failed: {failure.reason}: {failure.message}", file=sys.stderr)
            data = {ERROR_KEY: _error(failure.reason, failure.message, captured.getvalue())}
            code = 1
    if len(data.get(OUTPUT_KEY, "").encode()) > MAX_OUTPUT_BYTES:
        data = {
            ERROR_KEY: _error(
                "OutputTooLarge",
                f"the compiled pipeline has {len(data[OUTPUT_KEY].encode())} bytes, more than a ConfigMap "
                f"holds ({MAX_OUTPUT_BYTES}); compile it in CI and upload it as a compiled Pipeline",
                "",
            )
        }
        code = 1
    try:
        write_config_map(args.output, data)
    except Exception as error:  # nothing else can say what happened: the Job fails without output
        print(f"could not write ConfigMap {args.output}: {error}", file=sys.stderr)
        return 2
    print(f"wrote ConfigMap {args.output}" + (" (compiled)" if code == 0 else " (error)"))
    return code


def install(argv: list[str]) -> int:
    """Copies this script to ``DIR/compile.py``."""
    if len(argv) != 1:
        print("usage: python -m kfp_operator.compiler install DIR", file=sys.stderr)
        return 2
    target = Path(argv[0]) / "compile.py"
    shutil.copyfile(Path(__file__), target)
    print(f"installed the compiler as {target}")
    return 0


# -- compiling ------------------------------------------------------------------------------------


def compile_pipeline(args: argparse.Namespace) -> str:
    function = load_function(args.function)
    if args.framework == "tfx":
        return compile_tfx(function, args)
    return compile_kfp(function, args.function)


def load_function(qualified: str) -> Any:
    module_name, _, function_name = qualified.rpartition(".")
    if not module_name or not function_name:
        raise CompileFailure("FunctionNotFound", f"{qualified!r} is not module.function")
    # The working directory holds the user's code in most images; the script's own is not theirs.
    working_dir = str(Path.cwd())
    if working_dir not in sys.path:
        sys.path.insert(1, working_dir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise CompileFailure(
                "ModuleNotFound", f"no module named {module_name!r} in the image (sys.path: {sys.path[1:]})"
            ) from None
        raise CompileFailure("CompileFailed", f"importing {module_name}: {error}\n{_traceback()}") from None
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        raise CompileFailure(
            "CompileFailed", f"importing {module_name}: {type(error).__name__}: {error}\n{_traceback()}"
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise CompileFailure("FunctionNotFound", f"module {module_name} has no {function_name!r}")
    return function


def compile_kfp(function: Any, qualified: str) -> str:
    try:
        kfp_compiler = importlib.import_module("kfp.compiler")
    except ImportError as error:
        raise CompileFailure("CompileFailed", f"the image has no KFP SDK (kfp): {error}") from None
    if type(function).__name__ != "GraphComponent":
        what = type(function).__name__
        hint = "a component, not a pipeline" if hasattr(function, "component_spec") else f"a {what}"
        raise CompileFailure(
            "NotAPipeline", f"{qualified} is {hint}: pipelineFunction must name a @dsl.pipeline function"
        )
    with tempfile.TemporaryDirectory() as workdir:
        package = Path(workdir) / "pipeline.yaml"
        try:
            kfp_compiler.Compiler().compile(pipeline_func=function, package_path=str(package))
        except Exception as error:
            raise CompileFailure(
                "CompileFailed", f"{type(error).__name__}: {error}\n{_traceback()}"
            ) from None
        return package.read_text()


def compile_tfx(function: Any, args: argparse.Namespace) -> str:
    try:
        tfx_pipeline = importlib.import_module("tfx.orchestration.pipeline")
        kubeflow_v2_dag_runner = importlib.import_module(
            "tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner"
        )
    except ImportError as error:
        raise CompileFailure("CompileFailed", f"the image has no TFX (tfx): {error}") from None
    if not callable(function):
        raise CompileFailure("NotAPipeline", f"{args.function} is not a function")
    try:
        made = function()
    except Exception as error:
        raise CompileFailure(
            "CompileFailed", f"calling {args.function}: {type(error).__name__}: {error}\n{_traceback()}"
        ) from None
    if isinstance(made, tfx_pipeline.Pipeline):
        pipeline = made
    elif isinstance(made, (list, tuple)) and made:
        beam_args = [f"--{arg}" for arg in args.beam_arg]
        pipeline = tfx_pipeline.Pipeline(
            pipeline_name=args.pipeline_name,
            pipeline_root=os.environ.get("KFP_PIPELINE_ROOT", ""),
            components=list(made),
            enable_cache=False,
            beam_pipeline_args=beam_args,
        )
    else:
        raise CompileFailure(
            "NotAPipeline",
            f"{args.function} returned {type(made).__name__}: tfxComponents must name a function "
            "returning the pipeline's TFX components (a non-empty list)",
        )
    with tempfile.TemporaryDirectory() as workdir:
        try:
            runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
                config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=args.image),
                output_dir=workdir,
                output_filename="pipeline.json",
            )
            runner.run(pipeline)
        except Exception as error:
            raise CompileFailure(
                "CompileFailed", f"{type(error).__name__}: {error}\n{_traceback()}"
            ) from None
        return (Path(workdir) / "pipeline.json").read_text()


# -- handing it back -----------------------------------------------------------------------------


def write_config_map(name: str, data: dict[str, str]) -> None:
    """Creates the ConfigMap ``name``, owned by this Job, in this pod's namespace."""
    namespace = os.environ.get(NAMESPACE_ENV) or _read(SERVICE_ACCOUNT_DIR / "namespace")
    job_uid = os.environ.get(JOB_UID_ENV, "")
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/component": "pipeline-compiler",
                "app.kubernetes.io/managed-by": "kfp-operator",
            },
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job_uid}],
        },
        "data": data,
    }
    url, token, context = _api()
    request = urllib.request.Request(
        f"{url}/api/v1/namespaces/{namespace}/configmaps",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, context=context, timeout=30):
                return
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            if (error.code != 429 and error.code < 500) or attempt == WRITE_ATTEMPTS - 1:
                raise RuntimeError(f"HTTP {error.code}: {detail}") from None
        except OSError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
        time.sleep(2**attempt)


def _api() -> tuple[str, str, ssl.SSLContext]:
    url = os.environ.get("KFP_COMPILER_API_URL", "")
    if not url:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    token_file = os.environ.get("KFP_COMPILER_TOKEN_FILE") or str(SERVICE_ACCOUNT_DIR / "token")
    ca_file = os.environ.get("KFP_COMPILER_CA_FILE") or str(SERVICE_ACCOUNT_DIR / "ca.crt")
    context = ssl.create_default_context(cafile=ca_file if Path(ca_file).exists() else None)
    return url.rstrip("/"), _read(Path(token_file)), context


def _read(path: Path) -> str:
    return path.read_text().strip()


def _error(reason: str, message: str, output: str) -> str:
    return json.dumps({"reason": reason, "message": message, "output": output[-OUTPUT_TAIL:]})


def _traceback() -> str:
    lines = traceback.format_exc().strip().splitlines()
    return "\n".join(lines[-12:])


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()


@contextlib.contextmanager
def _tee(buffer: io.StringIO) -> Iterator[None]:
    """Copies what the compile prints into ``buffer`` (the error's output), still printing it."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(stdout, buffer), _Tee(stderr, buffer)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr


if __name__ == "__main__":
    sys.exit(main())
