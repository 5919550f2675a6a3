"""The Kubeflow Pipelines API (v2beta1) as the operator uses it.

Calls go through the official ``kfp-server-api`` client (URL building, auth,
parameter encoding), but responses are read as raw JSON: the generated models
deserialise every nested field of every run into objects, which dominates the
cost of the bulk poll, and the operator only needs a few fields.

Retries follow the Kubernetes client's rule (``controller.transport``): one layer
per call. Inside a reconcile a call is made once and the work queue's per-item
backoff is the retry layer; elsewhere (the bulk poll) idempotent calls are retried
a few times on connection errors, 429 (honouring Retry-After) and 5xx, with a small
budget. Creating a run is never retried here: a create whose response was lost
must be found by its marker before it is attempted again, which the Run reconciler
does on its next pass.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import kfp_server_api
import tenacity
import urllib3
from prometheus_client import CollectorRegistry, Counter, Histogram

from controller.transport import retries_enabled
from kfp_operator.settings import KfpConfig
from reconcilers.clients import KfpError

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 3
MAX_RETRY_AFTER = 10.0
PAGE_SIZE = 200  # the server's cap


class KfpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "kfp_operator_kfp_requests_total",
            "KFP API requests by operation and HTTP status code (<error> when there was no response).",
            ["operation", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "kfp_operator_kfp_request_duration_seconds",
            "KFP API request latency by operation.",
            ["operation"],
            registry=registry,
        )


class KfpClient:
    """Thin, metered, retrying access to the KFP API; one instance is shared by all workers."""

    def __init__(self, config: KfpConfig, metrics: KfpMetrics, *, pool_size: int = 16) -> None:
        configuration = kfp_server_api.Configuration(host=config.endpoint.rstrip("/"))
        # One retry policy, ours: urllib3 would otherwise retry connection errors underneath.
        configuration.retries = False
        configuration.connection_pool_maxsize = pool_size
        if config.token_path:
            token_path = Path(config.token_path)
            configuration.api_key_prefix["authorization"] = "Bearer"

            def refresh(conf: kfp_server_api.Configuration) -> None:
                # The projected ServiceAccount token rotates; read it before every request.
                conf.api_key["authorization"] = token_path.read_text().strip()

            configuration.refresh_api_key_hook = refresh
        api_client = kfp_server_api.ApiClient(configuration)
        self._runs = kfp_server_api.RunServiceApi(api_client)
        self._pipelines = kfp_server_api.PipelineServiceApi(api_client)
        self._experiments = kfp_server_api.ExperimentServiceApi(api_client)
        self._uploads = kfp_server_api.PipelineUploadServiceApi(api_client)
        self._metrics = metrics
        self.multi_user = config.multi_user

    # -- pipelines ---------------------------------------------------------------------------

    def get_pipeline_by_name(self, name: str, namespace: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_pipeline_by_name",
            lambda **kw: self._pipelines.pipeline_service_get_pipeline_by_name(
                name, namespace=self._namespace(namespace), **kw
            ),
        )

    def list_pipeline_versions(
        self,
        pipeline_id: str,
        *,
        filter: Mapping[str, Any] | None = None,
        sort_by: str = "",
        page_size: int = 0,
    ) -> list[dict[str, Any]]:
        response = self._idempotent(
            "list_pipeline_versions",
            lambda **kw: self._pipelines.pipeline_service_list_pipeline_versions(
                pipeline_id, filter=_filter(filter), sort_by=sort_by, page_size=page_size, **kw
            ),
        )
        versions: list[dict[str, Any]] = response.get("pipeline_versions", [])
        return versions

    def get_pipeline_version(self, pipeline_id: str, version_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_pipeline_version",
            lambda **kw: self._pipelines.pipeline_service_get_pipeline_version(pipeline_id, version_id, **kw),
        )

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_pipeline",
            lambda **kw: self._pipelines.pipeline_service_get_pipeline(pipeline_id, **kw),
        )

    def create_pipeline(self, *, name: str, description: str, namespace: str) -> dict[str, Any]:
        """Creates a pipeline without versions (an upload would add one named like the pipeline)."""
        body: dict[str, Any] = {"name": name, "display_name": name, "description": description}
        if self._namespace(namespace):
            body["namespace"] = namespace
        return self._call(
            "create_pipeline", lambda **kw: self._pipelines.pipeline_service_create_pipeline(body, **kw)
        )

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._ignoring_not_found(
            "delete_pipeline",
            lambda **kw: self._pipelines.pipeline_service_delete_pipeline(pipeline_id, **kw),
        )

    def find_pipeline_version(self, pipeline_id: str, name: str) -> dict[str, Any] | None:
        versions = self.list_pipeline_versions(
            pipeline_id, filter={"predicates": [{"key": "name", "operation": "EQUALS", "string_value": name}]}
        )
        return versions[0] if versions else None

    def all_pipeline_versions(self, pipeline_id: str) -> Iterator[dict[str, Any]]:
        """Every version of the pipeline, oldest first, following page tokens."""
        token = ""
        while True:
            query = {"page_token": token} if token else {"sort_by": "created_at asc"}
            response = self._idempotent(
                "list_pipeline_versions",
                lambda query=query, **kw: self._pipelines.pipeline_service_list_pipeline_versions(
                    pipeline_id, page_size=PAGE_SIZE, **query, **kw
                ),
            )
            yield from response.get("pipeline_versions", [])
            token = response.get("next_page_token", "")
            if not token:
                return

    def upload_pipeline_version(
        self, pipeline_id: str, *, name: str, description: str, content: str
    ) -> dict[str, Any]:
        """Uploads a compiled pipeline as a new version (not retried here: it is not idempotent)."""
        with tempfile.TemporaryDirectory() as directory:
            package = Path(directory) / "pipeline.yaml"
            package.write_text(content)
            return self._call(
                "upload_pipeline_version",
                lambda **kw: self._uploads.upload_pipeline_version(
                    str(package),
                    pipelineid=pipeline_id,
                    name=name,
                    display_name=name,
                    description=description,
                    **kw,
                ),
            )

    def delete_pipeline_version(self, pipeline_id: str, version_id: str) -> None:
        self._ignoring_not_found(
            "delete_pipeline_version",
            lambda **kw: self._pipelines.pipeline_service_delete_pipeline_version(
                pipeline_id, version_id, **kw
            ),
        )

    # -- experiments -------------------------------------------------------------------------

    def find_experiment(self, display_name: str, namespace: str) -> dict[str, Any] | None:
        """The experiment of that display name (unique per namespace), or None."""
        experiments = self.list_experiments(
            filter={
                "predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": display_name}]
            },
            namespace=namespace,
        )
        return experiments[0] if experiments else None

    def create_experiment(self, *, display_name: str, description: str, namespace: str) -> dict[str, Any]:
        body: dict[str, Any] = {"display_name": display_name, "description": description}
        if self._namespace(namespace):
            body["namespace"] = namespace
        return self._call(
            "create_experiment",
            lambda **kw: self._experiments.experiment_service_create_experiment(body, **kw),
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._ignoring_not_found(
            "delete_experiment",
            lambda **kw: self._experiments.experiment_service_delete_experiment(experiment_id, **kw),
        )

    def archive_experiment(self, experiment_id: str) -> None:
        self._idempotent(
            "archive_experiment",
            lambda **kw: self._experiments.experiment_service_archive_experiment(experiment_id, **kw),
        )

    def unarchive_experiment(self, experiment_id: str) -> None:
        self._idempotent(
            "unarchive_experiment",
            lambda **kw: self._experiments.experiment_service_unarchive_experiment(experiment_id, **kw),
        )

    def experiment_has_runs(self, experiment_id: str) -> bool:
        """Whether any run (archived or not) is in the experiment: one call for one run."""
        runs = self.list_runs(filter={}, experiment_id=experiment_id, page_size=1)
        return next(iter(runs), None) is not None

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_experiment",
            lambda **kw: self._experiments.experiment_service_get_experiment(experiment_id, **kw),
        )

    def list_experiments(self, *, filter: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
        response = self._idempotent(
            "list_experiments",
            lambda **kw: self._experiments.experiment_service_list_experiments(
                filter=_filter(filter), namespace=self._namespace(namespace), **kw
            ),
        )
        experiments: list[dict[str, Any]] = response.get("experiments", [])
        return experiments

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("create_run", lambda **kw: self._runs.run_service_create_run(dict(body), **kw))

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none("get_run", lambda **kw: self._runs.run_service_get_run(run_id, **kw))

    def terminate_run(self, run_id: str) -> None:
        self._idempotent("terminate_run", lambda **kw: self._runs.run_service_terminate_run(run_id, **kw))

    def list_runs(
        self,
        *,
        filter: Mapping[str, Any],
        sort_by: str = "",
        namespace: str = "",
        experiment_id: str = "",
        page_size: int = PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every matching run, following page tokens (one call per page).

        Pages after the first send only the token: it carries the filter and the sort order, and
        the real server refuses a token sent with them again whenever the filter compares a
        number or a time (it compares them after a JSON round trip that turns int64 into float64).
        """
        token = ""
        while True:
            query = {"page_token": token} if token else {"filter": _filter(filter), "sort_by": sort_by}
            response = self._idempotent(
                "list_runs",
                lambda query=query, **kw: self._runs.run_service_list_runs(
                    page_size=page_size,
                    namespace=self._namespace(namespace) or None,
                    experiment_id=experiment_id or None,
                    **query,
                    **kw,
                ),
            )
            yield from response.get("runs", [])
            token = response.get("next_page_token", "")
            if not token:
                return

    # -- plumbing ----------------------------------------------------------------------------

    def _namespace(self, namespace: str) -> str:
        # Single-user servers ignore namespaces; sending none keeps requests identical to the SDK's.
        return namespace if self.multi_user else ""

    def _ignoring_not_found(self, operation: str, call: Callable[..., Any]) -> None:
        """A delete: one that finds nothing to delete has nothing left to do."""
        self._idempotent_or_none(operation, call)

    def _idempotent_or_none(self, operation: str, call: Callable[..., Any]) -> dict[str, Any] | None:
        try:
            return self._idempotent(operation, call)
        except KfpError as error:
            if error.status == 404:
                return None
            raise

    def _idempotent(self, operation: str, call: Callable[..., Any]) -> dict[str, Any]:
        if not retries_enabled():
            return self._call(operation, call)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, KfpError) and e.is_transient),
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
            wait=_retry_after_or_backoff,
            reraise=True,
        )
        return retrying(self._call, operation, call)

    def _call(self, operation: str, call: Callable[..., Any]) -> dict[str, Any]:
        started = time.monotonic()
        code = "<error>"
        try:
            response = call(_preload_content=False, _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            code = str(response.status)
            data = response.data
            return json.loads(data) if data else {}
        except kfp_server_api.ApiException as error:
            code = str(error.status)
            raise KfpError(
                operation, error.status, _error_message(error), _retry_after(error.headers)
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KfpError(operation, None, f"{type(error).__name__}: {error}") from None
        finally:
            self._metrics.requests.labels(operation, code).inc()
            self._metrics.duration.labels(operation).observe(time.monotonic() - started)


def _filter(predicates: Mapping[str, Any] | None) -> str | None:
    return json.dumps(predicates) if predicates else None


def _error_message(error: kfp_server_api.ApiException) -> str:
    """The short, user-facing message of a ``google.rpc.Status`` body, else the raw body."""
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body or "")
    try:
        status = json.loads(body)
    except ValueError:
        return f"HTTP {error.status}: {body[:500] or error.reason}"
    details = status.get("details") or []
    message = (details[0].get("message") if details else None) or status.get("message")
    message = message or status.get("error_message") or body[:500]
    return f"HTTP {error.status}: {message}"


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by API servers we talk to)."""
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _retry_after_or_backoff(state: tenacity.RetryCallState) -> float:
    """Waits as long as a 429's Retry-After asks (bounded), else a short exponential backoff."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, KfpError) and error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_AFTER)
    return tenacity.wait_exponential_jitter(initial=0.2, max=2.0)(state)
