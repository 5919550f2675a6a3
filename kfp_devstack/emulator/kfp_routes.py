"""The KFP v2beta1 REST routes: HTTP requests in, service calls, JSON out.

Query parameters are parsed as grpc-gateway parses them: unknown ones are ignored, a
malformed number is a 400 naming the field, and the deprecated ``experiment_id``
parameter of the run calls is ignored. The healthz route is a plain handler in the
real server and answers fields its schema lacks (``commit_sha``, ``tag_name``).
"""

from __future__ import annotations

from typing import Any

from kfp_devstack.emulator import errors
from kfp_devstack.emulator.api_experiments import ExperimentService
from kfp_devstack.emulator.api_pipelines import PipelineService
from kfp_devstack.emulator.api_runs import RunService
from kfp_devstack.emulator.errors import Code
from kfp_devstack.emulator.http_server import Request, Response, Router
from kfp_devstack.emulator.multipart import UploadedFile, form_file

API = "/apis/v2beta1"
KFP_TAG = "2.17.0"


def add_kfp_routes(
    router: Router,
    *,
    experiments: ExperimentService,
    pipelines: PipelineService,
    runs: RunService,
    multi_user: bool,
) -> None:
    def healthz(request: Request) -> Response:
        return Response(
            200,
            {
                "commit_sha": "emulator",
                "tag_name": KFP_TAG,
                "multi_user": multi_user,
                "pipeline_store": "database",
            },
        )

    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        router.add(method, f"{API}/healthz", healthz, kind="public")

    _add_pipeline_routes(router, pipelines)
    _add_experiment_routes(router, experiments)
    _add_run_routes(router, runs)


def _add_pipeline_routes(router: Router, pipelines: PipelineService) -> None:
    router.add(
        "POST",
        f"{API}/pipelines/upload",
        lambda r: _ok(pipelines.upload(_uploaded_file(r), _flat(r))),
        kind="upload",
    )
    router.add(
        "POST",
        f"{API}/pipelines/upload_version",
        lambda r: _ok(pipelines.upload_version(_uploaded_file(r), _flat(r))),
        kind="upload",
    )
    router.add("POST", f"{API}/pipelines", lambda r: _ok(pipelines.create(r.body)))
    router.add(
        "GET",
        f"{API}/pipelines",
        lambda r: _ok(pipelines.list(namespace=r.arg("namespace"), **_list_args(r))),
    )
    router.add(
        "GET",
        f"{API}/pipelines/names/{{name}}",
        lambda r: _ok(pipelines.get_by_name(r.params["name"], r.arg("namespace"))),
    )
    router.add(
        "GET", f"{API}/pipelines/{{pipeline_id}}", lambda r: _ok(pipelines.get(r.params["pipeline_id"]))
    )
    router.add(
        "DELETE",
        f"{API}/pipelines/{{pipeline_id}}",
        lambda r: _ok(pipelines.delete(r.params["pipeline_id"], _bool_arg(r, "cascade"))),
    )
    router.add(
        "GET",
        f"{API}/pipelines/{{pipeline_id}}/versions",
        lambda r: _ok(pipelines.list_versions(r.params["pipeline_id"], **_list_args(r))),
    )
    router.add(
        "POST",
        f"{API}/pipelines/{{pipeline_id}}/versions",
        lambda r: _ok(pipelines.create_version(r.params["pipeline_id"], r.body)),
    )
    # GetPipelineVersion and DeletePipelineVersion look the version up by its id alone
    # (docs/emulator.md §4.2).
    router.add(
        "GET",
        f"{API}/pipelines/{{pipeline_id}}/versions/{{pipeline_version_id}}",
        lambda r: _ok(pipelines.get_version(r.params["pipeline_version_id"])),
    )
    router.add(
        "DELETE",
        f"{API}/pipelines/{{pipeline_id}}/versions/{{pipeline_version_id}}",
        lambda r: _ok(pipelines.delete_version(r.params["pipeline_version_id"])),
    )


def _add_experiment_routes(router: Router, experiments: ExperimentService) -> None:
    router.add("POST", f"{API}/experiments", lambda r: _ok(experiments.create(r.body)))
    router.add(
        "GET",
        f"{API}/experiments",
        lambda r: _ok(experiments.list(namespace=r.arg("namespace"), **_list_args(r))),
    )
    router.add(
        "GET",
        f"{API}/experiments/{{experiment_id}}",
        lambda r: _ok(experiments.get(r.params["experiment_id"])),
    )
    router.add(
        "DELETE",
        f"{API}/experiments/{{experiment_id}}",
        lambda r: _ok(experiments.delete(r.params["experiment_id"])),
    )
    router.add(
        "POST",
        f"{API}/experiments/{{experiment_id}}:archive",
        lambda r: _ok(experiments.archive(r.params["experiment_id"])),
    )
    router.add(
        "POST",
        f"{API}/experiments/{{experiment_id}}:unarchive",
        lambda r: _ok(experiments.unarchive(r.params["experiment_id"])),
    )


def _add_run_routes(router: Router, runs: RunService) -> None:
    router.add("POST", f"{API}/runs", lambda r: _ok(runs.create(r.body)))
    router.add(
        "GET",
        f"{API}/runs",
        lambda r: _ok(
            runs.list(namespace=r.arg("namespace"), experiment_id=r.arg("experiment_id"), **_list_args(r))
        ),
    )
    router.add("GET", f"{API}/runs/{{run_id}}", lambda r: _ok(runs.get(r.params["run_id"])))
    router.add("DELETE", f"{API}/runs/{{run_id}}", lambda r: _ok(runs.delete(r.params["run_id"])))
    router.add("POST", f"{API}/runs/{{run_id}}:terminate", lambda r: _ok(runs.terminate(r.params["run_id"])))
    router.add("POST", f"{API}/runs/{{run_id}}:archive", lambda r: _ok(runs.archive(r.params["run_id"])))
    router.add("POST", f"{API}/runs/{{run_id}}:unarchive", lambda r: _ok(runs.unarchive(r.params["run_id"])))
    router.add("POST", f"{API}/runs/{{run_id}}:retry", lambda r: _ok(runs.retry(r.params["run_id"])))


def _ok(payload: dict[str, Any]) -> Response:
    return Response(200, payload)


def _uploaded_file(request: Request) -> UploadedFile | None:
    return form_file(request.headers.get("content-type", ""), request.body, "uploadfile")


def _flat(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in request.query.items() if values}


def _list_args(request: Request) -> dict[str, Any]:
    return {
        "page_token": request.arg("page_token"),
        "page_size": _int_arg(request, "page_size"),
        "sort_by": request.arg("sort_by"),
        "filter_text": request.arg("filter"),
    }


def _int_arg(request: Request, name: str) -> int:
    text = request.arg(name)
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise errors.gateway(
            Code.INVALID_ARGUMENT,
            f'parsing field "{name}": strconv.ParseInt: parsing "{text}": invalid syntax',
        ) from None
    if not -(2**31) <= value < 2**31:
        raise errors.gateway(
            Code.INVALID_ARGUMENT,
            f'parsing field "{name}": strconv.ParseInt: parsing "{text}": value out of range',
        )
    return value


def _bool_arg(request: Request, name: str) -> bool:
    text = request.arg(name)
    if text in ("", "false", "False", "0", "f", "F", "FALSE"):
        return False
    if text in ("true", "True", "1", "t", "T", "TRUE"):
        return True
    raise errors.gateway(
        Code.INVALID_ARGUMENT, f'parsing field "{name}": strconv.ParseBool: parsing "{text}": invalid syntax'
    )
