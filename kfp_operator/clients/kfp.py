"""The Kubeflow Pipelines API (v2beta1) as the operator uses it: JSON over HTTP, with libcurl
(``controller.libcurl``: a request costs a third of the CPU it costs through urllib3), except
POSTs (a run's create), which libcurl could repeat on its own and urllib3 never does.

The operator makes a dozen calls whose paths, query parameters and JSON bodies are fixed by the
API (``kfp-and-mlmd.md``), and reads a few fields of the answers. The generated ``kfp-server-api``
package would add nothing but weight: it ships no wheel (so it cannot be installed from wheels
alone, on every platform), and its models deserialise every nested field of every run, which
dominated the cost of the bulk poll.

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
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict, TypeVar
from urllib.parse import quote, urlencode

import msgspec
import tenacity
import urllib3
from prometheus_client import CollectorRegistry, Counter, Histogram

from controller import jsoncodec
from controller.libcurl import REPEATABLE_METHODS, CurlResponse, CurlSession, TlsOptions
from controller.metrics import LabelledChildren
from controller.transport import retried, retries_enabled
from kfp_operator.clients.http_failures import describe_http_failure
from kfp_operator.settings import KfpConfig
from reconcilers.clients import KfpError, RunsPage

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 3
MAX_RETRY_AFTER = 10.0
PAGE_SIZE = 200  # the server's cap


class _RunSummary(TypedDict, total=False):
    run_id: Any
    state: Any
    created_at: Any
    finished_at: Any


class _RunSummaries(TypedDict, total=False):
    runs: list[_RunSummary]
    total_size: Any
    next_page_token: Any


# A page of 200 runs with their task details is over a megabyte of JSON, which the bulk poll
# reads every poll interval and of which it needs four fields per run. msgspec decodes only
# those (it skips the others without building them): a thirteenth of the time orjson takes to
# decode the page whole, during which the decoding thread holds the interpreter.
_RUN_SUMMARIES = msgspec.json.Decoder(_RunSummaries)


def _run_summaries(data: bytes) -> dict[str, Any]:
    try:
        return dict(_RUN_SUMMARIES.decode(data))  # a TypedDict is not a dict[str, Any] to mypy
    except msgspec.DecodeError:  # not strict JSON, or not shaped as expected: decode it whole
        decoded: dict[str, Any] = jsoncodec.loads(data)
        return decoded


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
    """Thin, metered access to the KFP API, retried where that is safe; shared by all workers."""

    def __init__(self, config: KfpConfig, metrics: KfpMetrics, *, pool_size: int = 16) -> None:
        self._base = config.endpoint.rstrip("/")
        self._token_path = Path(config.token_path) if config.token_path else None
        # Requests other than POSTs: one connection per calling thread, kept alive. libcurl sends
        # a request once more when a kept-alive connection died before any answer, which is
        # harmless for these (controller.libcurl); the retry policy here is otherwise the only one.
        tls = TlsOptions(
            ca_file=config.ca_file or None,  # None: the system's CAs
            cert_file=config.cert_file or None,
            key_file=config.key_file or None,
        )
        self._http = CurlSession(tls, connect_timeout=CONNECT_TIMEOUT)
        # POSTs: a create must never be sent twice, and urllib3 (with its retries off) never
        # repeats one; one retry policy, ours.
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            cert_reqs="CERT_REQUIRED",
            ca_certs=tls.ca_file,
            cert_file=tls.cert_file,
            key_file=tls.key_file,
        )
        self._requests = LabelledChildren(metrics.requests)
        self._duration = LabelledChildren(metrics.duration)
        self.multi_user = config.multi_user

    def close(self) -> None:
        self._http.close()
        self._pool.clear()

    # -- pipelines ---------------------------------------------------------------------------

    def get_pipeline_by_name(self, name: str, namespace: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_pipeline_by_name",
            "GET",
            f"/apis/v2beta1/pipelines/names/{_segment(name)}",
            query={"namespace": self._namespace(namespace)},
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
            "GET",
            f"/apis/v2beta1/pipelines/{_segment(pipeline_id)}/versions",
            query={"filter": _filter(filter), "sort_by": sort_by, "page_size": page_size or None},
        )
        versions: list[dict[str, Any]] = response.get("pipeline_versions", [])
        return versions

    def get_pipeline_version(self, pipeline_id: str, version_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_pipeline_version",
            "GET",
            f"/apis/v2beta1/pipelines/{_segment(pipeline_id)}/versions/{_segment(version_id)}",
        )

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_pipeline", "GET", f"/apis/v2beta1/pipelines/{_segment(pipeline_id)}"
        )

    def create_pipeline(self, *, name: str, description: str, namespace: str) -> dict[str, Any]:
        """Creates a pipeline without versions (an upload would add one named like the pipeline)."""
        body: dict[str, Any] = {"name": name, "display_name": name, "description": description}
        if self._namespace(namespace):
            body["namespace"] = namespace
        return self._call("create_pipeline", "POST", "/apis/v2beta1/pipelines", body=body)

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._ignoring_not_found(
            "delete_pipeline", "DELETE", f"/apis/v2beta1/pipelines/{_segment(pipeline_id)}"
        )

    def find_pipeline_version(self, pipeline_id: str, name: str) -> dict[str, Any] | None:
        versions = self.list_pipeline_versions(
            pipeline_id, filter={"predicates": [{"key": "name", "operation": "EQUALS", "string_value": name}]}
        )
        return versions[0] if versions else None

    def all_pipeline_versions(self, pipeline_id: str) -> Iterator[dict[str, Any]]:
        """Every version of the pipeline, oldest first, following page tokens (sent alone, as
        :meth:`list_runs` explains)."""
        token = ""
        while True:
            query: dict[str, Any] = {"page_size": PAGE_SIZE}
            query.update({"page_token": token} if token else {"sort_by": "created_at asc"})
            response = self._idempotent(
                "list_pipeline_versions",
                "GET",
                f"/apis/v2beta1/pipelines/{_segment(pipeline_id)}/versions",
                query=query,
            )
            yield from response.get("pipeline_versions", [])
            token = response.get("next_page_token", "")
            if not token:
                return

    def upload_pipeline_version(
        self, pipeline_id: str, *, name: str, description: str, content: str
    ) -> dict[str, Any]:
        """Uploads a compiled pipeline as a new version (not retried here: it is not idempotent).

        The upload endpoint takes the package as the multipart field ``uploadfile`` and the
        version's fields as query parameters, as KFP's SDK sends them.
        """
        return self._call(
            "upload_pipeline_version",
            "POST",
            "/apis/v2beta1/pipelines/upload_version",
            query={"pipelineid": pipeline_id, "name": name, "display_name": name, "description": description},
            upload=("pipeline.yaml", content.encode()),
        )

    def delete_pipeline_version(self, pipeline_id: str, version_id: str) -> None:
        self._ignoring_not_found(
            "delete_pipeline_version",
            "DELETE",
            f"/apis/v2beta1/pipelines/{_segment(pipeline_id)}/versions/{_segment(version_id)}",
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
        return self._call("create_experiment", "POST", "/apis/v2beta1/experiments", body=body)

    def delete_experiment(self, experiment_id: str) -> None:
        self._ignoring_not_found(
            "delete_experiment", "DELETE", f"/apis/v2beta1/experiments/{_segment(experiment_id)}"
        )

    def archive_experiment(self, experiment_id: str) -> None:
        self._idempotent(
            "archive_experiment", "POST", f"/apis/v2beta1/experiments/{_segment(experiment_id)}:archive"
        )

    def unarchive_experiment(self, experiment_id: str) -> None:
        self._idempotent(
            "unarchive_experiment", "POST", f"/apis/v2beta1/experiments/{_segment(experiment_id)}:unarchive"
        )

    def experiment_has_runs(self, experiment_id: str) -> bool:
        """Whether any run (archived or not) is in the experiment: one call for one run."""
        runs = self.list_runs(filter={}, experiment_id=experiment_id, page_size=1)
        return next(iter(runs), None) is not None

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none(
            "get_experiment", "GET", f"/apis/v2beta1/experiments/{_segment(experiment_id)}"
        )

    def list_experiments(self, *, filter: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
        response = self._idempotent(
            "list_experiments",
            "GET",
            "/apis/v2beta1/experiments",
            query={"filter": _filter(filter), "namespace": self._namespace(namespace)},
        )
        experiments: list[dict[str, Any]] = response.get("experiments", [])
        return experiments

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("create_run", "POST", "/apis/v2beta1/runs", body=body)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._idempotent_or_none("get_run", "GET", f"/apis/v2beta1/runs/{_segment(run_id)}")

    def terminate_run(self, run_id: str) -> None:
        self._idempotent("terminate_run", "POST", f"/apis/v2beta1/runs/{_segment(run_id)}:terminate")

    def list_runs(
        self,
        *,
        filter: Mapping[str, Any],
        sort_by: str = "",
        namespace: str = "",
        experiment_id: str = "",
        page_size: int = PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every matching run, following page tokens (one call per page)."""
        for page in self._run_pages(
            filter=filter,
            sort_by=sort_by,
            namespace=namespace,
            experiment_id=experiment_id,
            first_page_size=page_size,
            page_size=page_size,
            decode=jsoncodec.loads,
        ):
            yield from page.runs

    def list_run_pages(
        self,
        *,
        filter: Mapping[str, Any],
        sort_by: str = "",
        namespace: str = "",
        first_page_size: int | None = None,
    ) -> Iterator[RunsPage]:
        """The matching runs a page at a time, each page with the server's ``total_size``; the
        next page is asked for only when the caller goes on. Each run holds only ``run_id``,
        ``state``, ``created_at`` and ``finished_at`` (:data:`_RUN_SUMMARIES`). The first page
        holds at most ``first_page_size`` runs, the others :data:`PAGE_SIZE` (the server takes
        the page size of each request, a token's included)."""
        return self._run_pages(
            filter=filter,
            sort_by=sort_by,
            namespace=namespace,
            first_page_size=min(first_page_size or PAGE_SIZE, PAGE_SIZE),
            page_size=PAGE_SIZE,
            decode=_run_summaries,
        )

    def _run_pages(
        self,
        *,
        filter: Mapping[str, Any],
        sort_by: str = "",
        namespace: str = "",
        experiment_id: str = "",
        first_page_size: int,
        page_size: int,
        decode: Callable[[bytes], dict[str, Any]],
    ) -> Iterator[RunsPage]:
        """Pages after the first send only the token: it carries the filter and the sort order,
        and the real server refuses a token sent with them again whenever the filter compares a
        number or a time (it compares them after a JSON round trip that turns int64 into
        float64)."""
        token = ""
        while True:
            query: dict[str, Any] = {
                "page_size": page_size if token else first_page_size,
                "namespace": self._namespace(namespace),
                "experiment_id": experiment_id,
            }
            query.update({"page_token": token} if token else {"filter": _filter(filter), "sort_by": sort_by})
            response = self._idempotent("list_runs", "GET", "/apis/v2beta1/runs", query=query, decode=decode)
            total = response.get("total_size")
            yield RunsPage(response.get("runs", []), int(total) if total is not None else None)
            token = response.get("next_page_token", "")
            if not token:
                return

    # -- plumbing ----------------------------------------------------------------------------

    def _namespace(self, namespace: str) -> str:
        # Single-user servers ignore namespaces; sending none keeps requests identical to the SDK's.
        return namespace if self.multi_user else ""

    def _ignoring_not_found(self, operation: str, method: str, path: str) -> None:
        """A delete: one that finds nothing to delete has nothing left to do."""
        self._idempotent_or_none(operation, method, path)

    def _idempotent_or_none(
        self, operation: str, method: str, path: str, *, query: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        try:
            return self._idempotent(operation, method, path, query=query)
        except KfpError as error:
            if error.status == 404:
                return None
            raise

    def _idempotent(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        decode: Callable[[bytes], dict[str, Any]] = jsoncodec.loads,
    ) -> dict[str, Any]:
        if not retries_enabled():
            return self._call(operation, method, path, query=query, decode=decode)
        return retried(lambda: self._call(operation, method, path, query=query, decode=decode), _retrying)

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        upload: tuple[str, bytes] | None = None,
        decode: Callable[[bytes], dict[str, Any]] = jsoncodec.loads,
    ) -> dict[str, Any]:
        """One request. ``upload`` is a file (name, content) sent as the multipart ``uploadfile``;
        ``decode`` turns a successful answer's JSON into what the caller reads."""
        started = time.monotonic()
        code = "<error>"
        url = self._base + path
        fields = {k: str(v) for k, v in (query or {}).items() if v not in (None, "")}
        if fields:
            url += "?" + urlencode(fields)
        headers = self._headers()
        payload: bytes | None
        if upload is not None:
            payload, headers["Content-Type"] = urllib3.encode_multipart_formdata({"uploadfile": upload})
        else:
            payload = json.dumps(body).encode() if body is not None else None
        try:
            response: CurlResponse | urllib3.BaseHTTPResponse
            if method in REPEATABLE_METHODS:
                response = self._http.request(method, url, headers, payload, CONNECT_TIMEOUT + READ_TIMEOUT)
            else:
                response = self._pool.request(method, url, body=payload, headers=headers)
            code = str(response.status)
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KfpError(
                operation, None, f"{type(error).__name__}: {error}", failure=describe_http_failure(error)
            ) from None
        finally:
            self._requests(operation, code).inc()
            self._duration(operation).observe(time.monotonic() - started)
        if not 200 <= response.status < 300:
            raise KfpError(
                operation,
                response.status,
                _error_message(response.status, data),
                _retry_after(response.headers),
            )
        return decode(data) if data else {}

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._token_path is not None:
            # The projected ServiceAccount token rotates: read it before every request.
            headers["Authorization"] = f"Bearer {self._token_path.read_text().strip()}"
        return headers


def _segment(value: str) -> str:
    return quote(value, safe="")


def _filter(predicates: Mapping[str, Any] | None) -> str | None:
    return json.dumps(predicates) if predicates else None


def _error_message(status: int, data: bytes) -> str:
    """The short, user-facing message of a ``google.rpc.Status`` body, else the raw body."""
    body = data.decode(errors="replace")
    try:
        decoded = json.loads(body)
    except ValueError:
        return f"HTTP {status}: {body[:500]}"
    if not isinstance(decoded, dict):
        return f"HTTP {status}: {body[:500]}"
    details = decoded.get("details") or []
    message = (
        details[0].get("message") if details and isinstance(details[0], dict) else None
    ) or decoded.get("message")
    message = message or decoded.get("error_message") or body[:500]
    return f"HTTP {status}: {message}"


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by API servers we talk to)."""
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _retrying(spent: float) -> tenacity.Retrying:
    """The retry policy of an idempotent call made outside a reconcile: a few attempts, with no
    time budget (so the time the first attempt took does not matter)."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, KfpError) and e.is_transient),
        stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
        wait=_retry_after_or_backoff,
        reraise=True,
    )


def _retry_after_or_backoff(state: tenacity.RetryCallState) -> float:
    """Waits as long as a 429's Retry-After asks (bounded), else a short exponential backoff."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, KfpError) and error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_AFTER)
    return tenacity.wait_exponential_jitter(multiplier=0.2, max=2.0)(state)
