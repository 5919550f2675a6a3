"""The Kubernetes client layer against a scripted HTTP server: metrics, retries, limiter, helpers."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.exceptions
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying, stop_after_attempt, wait_none

from controller import transport
from controller.keys import ObjectKey
from controller.kube import Kube
from controller.metrics import Metrics
from controller.resource import CONFIGMAPS
from controller.transport import RETRY_ATTEMPTS, RETRY_BUDGET, retries_disabled
from controller.watchstream import iter_lines
from reconcilers.api import RUNS


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # a chunked (streaming) body instead


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeApiServer:
    """Answers requests from a script and records them."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.seen.append(
                    Seen(self.command, self.path, dict(self.headers), json.loads(raw) if raw else None)
                )
                reply = server.replies.popleft() if server.replies else Reply()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if reply.chunks is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.chunks:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data = json.dumps(reply.body).encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    yield fake
    fake.close()


@pytest.fixture(params=["libcurl", "urllib3"])
def client(request: pytest.FixtureRequest) -> Callable[..., Kube]:
    """Makes a client of the scripted server; every test runs over both HTTP stacks."""

    def make(host: str, **kwargs: Any) -> Kube:
        configuration = Configuration(host=f"http://{host}")
        kube = Kube(
            configuration, Metrics(process_collector=False), use_libcurl=request.param == "libcurl", **kwargs
        )
        assert (kube._rest.curl is not None) == (request.param == "libcurl")
        return kube

    return make


def requests_total(kube: Kube, code: str, method: str, host: str) -> float:
    value = kube.metrics.registry.get_sample_value(
        "rest_client_requests_total", {"code": code, "method": method, "host": host}
    )
    return value or 0.0


@pytest.fixture(autouse=True)
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # The retry budget's waits are real sleeps; tests check how often, not how long.
    monkeypatch.setattr(transport, "_WaitRetryAfter", lambda: lambda state: 0.0)


def test_every_request_is_counted_by_code_method_and_host(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host)
    server.replies.extend([Reply(503), Reply(200, {"kind": "ConfigMap"}), Reply(404)])
    assert kube.get(CONFIGMAPS, ObjectKey("ns", "a")) == {"kind": "ConfigMap"}
    with pytest.raises(ApiException) as raised:
        kube.get(CONFIGMAPS, ObjectKey("ns", "b"))
    assert raised.value.status == 404
    assert requests_total(kube, "503", "GET", server.host) == 1
    assert requests_total(kube, "200", "GET", server.host) == 1
    assert requests_total(kube, "404", "GET", server.host) == 1


def test_a_request_without_response_is_counted_as_error(client: Callable[..., Kube]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{s.getsockname()[1]}"
    kube = client(host)
    with pytest.raises(urllib3.exceptions.HTTPError):
        kube.request("GET", "/api/v1/namespaces", retry=False)
    assert requests_total(kube, "<error>", "GET", host) == 1


def test_transient_failures_are_retried_within_the_budget(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host)
    server.replies.extend([Reply(429, headers={"Retry-After": "1"}), Reply(500), Reply(200, {"ok": True})])
    assert kube.request("GET", "/api/v1/namespaces") == {"ok": True}
    assert len(server.seen) == 3

    server.seen.clear()
    server.replies.extend([Reply(503)] * (RETRY_ATTEMPTS + 2))
    with pytest.raises(ApiException):
        kube.request("GET", "/api/v1/namespaces")
    assert len(server.seen) == RETRY_ATTEMPTS, "the budget is bounded"


def test_retry_after_is_honoured_and_a_long_one_ends_the_retries(
    client: Callable[..., Kube], server: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real waiting policy
    kube = client(server.host)
    server.replies.extend([Reply(429, headers={"Retry-After": "60"}), Reply(200)])
    with pytest.raises(ApiException) as raised:
        kube.request("GET", "/api/v1/namespaces")
    assert raised.value.status == 429
    assert len(server.seen) == 1, "waiting 60 s would exceed the retry budget: give up instead"

    class State:
        outcome = type("Outcome", (), {"exception": lambda self: raised.value})()

    assert transport._WaitRetryAfter()(State()) == 60.0  # type: ignore[arg-type]


def test_nothing_is_retried_inside_a_reconcile(client: Callable[..., Kube], server: FakeApiServer) -> None:
    kube = client(server.host)
    server.replies.extend([Reply(503), Reply(200)])
    with retries_disabled(), pytest.raises(ApiException) as raised:
        kube.request("GET", "/api/v1/namespaces")
    assert raised.value.status == 503
    assert len(server.seen) == 1, "the work queue is the only retry layer inside a reconcile"


def test_permanent_failures_and_unsafe_repeats_are_not_retried(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host)
    server.replies.extend([Reply(409), Reply(500), Reply(503), Reply(201, {"created": True})])
    with pytest.raises(ApiException):
        kube.request("PUT", "/api/v1/namespaces/ns/configmaps/a", body={})
    with pytest.raises(ApiException):
        kube.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "ns"}})  # a 500 may have committed
    assert len(server.seen) == 2
    assert kube.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "ns"}}) == {"created": True}
    assert len(server.seen) == 4, "a 503 is refused before any work, so a POST may repeat"


def test_requests_take_tokens_from_the_client_side_bucket(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host, qps=0.001, burst=2)
    kube.request("GET", "/api/v1/namespaces")
    kube.request("GET", "/api/v1/namespaces")
    assert kube.limiter.reserve() > 100, "both tokens of the burst were spent by the two requests"


def test_patch_status_is_a_merge_patch_of_the_status_subresource(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host)
    kube.patch_status(RUNS, ObjectKey("ns", "r"), {"phase": "Running", "old": None}, resource_version="42")
    seen = server.seen[0]
    assert (seen.method, seen.path) == (
        "PATCH",
        "/apis/pipelines.kubeflow.org/v1alpha5/namespaces/ns/runs/r/status",
    )
    assert seen.headers["Content-Type"] == "application/merge-patch+json"
    assert seen.body == {"status": {"phase": "Running", "old": None}, "metadata": {"resourceVersion": "42"}}


def test_every_request_carries_the_current_token_the_user_agent_and_its_query(
    server: FakeApiServer,
) -> None:
    configuration = Configuration(host=f"http://{server.host}")
    configuration.api_key = {"BearerToken": "first"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    tokens = iter(["second", "third"])

    def refresh(config: Configuration) -> None:
        # What the kubeconfig loader installs for exec plugins and rotated token files.
        config.api_key = {"BearerToken": next(tokens)}

    configuration.refresh_api_key_hook = refresh
    kube = Kube(configuration, Metrics(process_collector=False))
    kube.list_page(CONFIGMAPS, "ns", limit=5, continue_token="c/1")
    kube.create(CONFIGMAPS, {"metadata": {"name": "ü", "namespace": "ns"}})
    first, second = server.seen
    headers = [{name.lower(): value for name, value in seen.headers.items()} for seen in server.seen]
    assert headers[0]["authorization"] == "Bearer second"
    assert headers[1]["authorization"] == "Bearer third", "the token is read again for each request"
    assert headers[0]["user-agent"].startswith("kfp-operator")
    assert first.path == "/api/v1/namespaces/ns/configmaps?limit=5&continue=c/1"
    assert second.body == {"metadata": {"name": "ü", "namespace": "ns"}}
    assert headers[1]["content-type"] == "application/json"


def test_finalizer_helpers_patch_conditionally_and_only_when_needed(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host)
    run = {"metadata": {"name": "r", "namespace": "ns", "resourceVersion": "7", "finalizers": ["other"]}}
    kube.add_finalizer(RUNS, run, "pipelines.kubeflow.org/run")
    assert server.seen[0].body == {
        "metadata": {"finalizers": ["other", "pipelines.kubeflow.org/run"], "resourceVersion": "7"}
    }
    assert run["metadata"]["finalizers"] == ["other"], "the cached object is not modified"
    assert kube.add_finalizer(RUNS, {"metadata": {**run["metadata"], "finalizers": ["x"]}}, "x") is None
    assert kube.remove_finalizer(RUNS, run, "absent") is None
    assert len(server.seen) == 1


def test_delete_with_uid_precondition(client: Callable[..., Kube], server: FakeApiServer) -> None:
    kube = client(server.host)
    server.replies.extend([Reply(200, {"status": "Success"}), Reply(404), Reply(409)])
    assert kube.delete(RUNS, ObjectKey("ns", "r"), uid="u-1", propagation_policy="Foreground") is True
    body = server.seen[0].body
    assert server.seen[0].method == "DELETE"
    assert body["preconditions"] == {"uid": "u-1"} and body["propagationPolicy"] == "Foreground"
    assert kube.delete(RUNS, ObjectKey("ns", "r"), uid="u-1") is False, "already gone"
    with pytest.raises(ApiException) as raised:
        kube.delete(RUNS, ObjectKey("ns", "r"), uid="u-1")
    assert raised.value.status == 409, "a different object with the same name is not deleted"


def test_watch_stream_decodes_events_across_chunk_boundaries(
    client: Callable[..., Kube], server: FakeApiServer
) -> None:
    kube = client(server.host)
    events = [
        {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "2"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "3"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410}},
    ]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    server.replies.append(Reply(chunks=[data[:10], data[10:57], data[57:]]))
    stream = kube.watch(CONFIGMAPS, "ns", resource_version="1", timeout_seconds=300)
    assert list(stream) == events
    stream.close()
    path = server.seen[0].path
    assert path.startswith("/api/v1/namespaces/ns/configmaps?")
    for part in ("watch=true", "timeoutSeconds=300", "allowWatchBookmarks=true", "resourceVersion=1"):
        assert part in path
    assert requests_total(kube, "200", "GET", server.host) == 1


def test_watch_request_rejected_with_410_raises(client: Callable[..., Kube], server: FakeApiServer) -> None:
    kube = client(server.host)
    server.replies.append(Reply(410, {"kind": "Status", "code": 410}))
    with pytest.raises(ApiException) as raised:
        kube.watch(CONFIGMAPS, None, resource_version="1", timeout_seconds=300)
    assert raised.value.status == 410


def test_iter_lines() -> None:
    chunks = [b'{"a"', b":1}\n{", b'"b":2}\n\n', b'{"c":3}']
    assert list(iter_lines(iter(chunks))) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_the_first_attempt_is_made_directly_and_its_failure_is_the_policys_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[str] = []
    clock = iter([100.0, 102.5, 200.0])  # the first attempt took 2.5 s
    monkeypatch.setattr(transport, "time", SimpleNamespace(monotonic=lambda: next(clock)))

    def attempt() -> str:
        steps.append("attempt")
        if steps.count("attempt") < 3:
            raise ApiException(status=503)
        return "ok"

    def policy(spent: float) -> Retrying:
        steps.append(f"policy, {spent} s spent")
        return Retrying(
            stop=stop_after_attempt(RETRY_ATTEMPTS),
            wait=wait_none(),
            reraise=True,
            before_sleep=lambda state: steps.append(f"retry after attempt {state.attempt_number}"),
        )

    assert transport.retried(attempt, policy) == "ok"
    assert steps == [
        "attempt",
        "policy, 2.5 s spent",
        "retry after attempt 1",
        "attempt",
        "retry after attempt 2",
        "attempt",
    ]
    assert transport.retried(lambda: "at once", lambda spent: pytest.fail("no policy")) == "at once"


def test_the_budget_counts_the_first_attempt() -> None:
    class State:
        attempt_number = 1
        seconds_since_start = 0.0
        upcoming_sleep = RETRY_BUDGET / 2

    stop = transport.retrying("GET", "/api/v1/namespaces", spent=RETRY_BUDGET * 0.6).stop
    assert stop(State()), "the first attempt and the wait would together exceed the budget"  # type: ignore[arg-type]
    assert not transport.retrying("GET", "/api/v1/namespaces").stop(State())  # type: ignore[arg-type]
