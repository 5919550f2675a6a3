"""Unary API requests over libcurl: header parsing, error mapping, when it is used, and the real
API server over TLS (client certificates, a CA that does not match, a request sent once)."""

from __future__ import annotations

import contextlib
import gc
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

import pycurl
import pytest
import urllib3.exceptions
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException

from controller.keys import ObjectKey
from controller.kube import Kube
from controller.libcurl import CurlResponse, CurlSession, TlsOptions, transport_error
from controller.metrics import Metrics
from controller.resource import CONFIGMAPS
from controller.transport import is_transient, serves
from kfp_devstack.pki import ensure_pki


class _Answering(BaseHTTPRequestHandler):
    """Answers every GET with the status and headers its path names: ``/<status>?<name>=<value>``."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status, _, query = self.path.lstrip("/").partition("?")
        data = b'{"kind": "Status"}'
        self.send_response(int(status))
        for pair in filter(None, query.split("&")):
            name, _, value = pair.partition("=")
            self.send_header(name, unquote(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _served(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A local HTTP server answering with ``handler``; yields its host:port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def answering_host() -> Iterator[str]:
    with _served(_Answering) as host:
        yield host


@pytest.mark.parametrize(
    ("path", "reason", "headers"),
    [
        (
            "/429?Retry-After=3&Content-Type=application/json&Audit-Id=a",
            "Too Many Requests",
            {"Retry-After": "3", "Content-Type": "application/json"},
        ),
        (
            "/409?Content-Type=application/json",
            "Conflict",
            {"Content-Type": "application/json", "Retry-After": None},
        ),
        ("/500", "Internal Server Error", {"Content-Type": None, "Retry-After": None}),
        ("/599", "", {}),
    ],
)
def test_an_error_answer_carries_its_reason_and_the_headers_the_operator_reads(
    answering_host: str, path: str, reason: str, headers: dict[str, str | None]
) -> None:
    session = CurlSession(TlsOptions())
    response = session.request("GET", f"http://{answering_host}{path}", {}, None, 5.0)
    assert response.status == int(path[1:4])
    assert response.reason == reason
    for name, value in headers.items():
        assert response.headers.get(name) == value
        assert response.getheader(name.lower()) == value, "case-insensitive, as urllib3's"
    assert "Audit-Id" not in response.headers, "only what libcurl parses itself"
    session.close()


def test_a_retry_after_date_is_turned_into_seconds(answering_host: str) -> None:
    in_an_hour = formatdate(time.time() + 3600, usegmt=True).replace(" ", "%20")
    session = CurlSession(TlsOptions())
    response = session.request("GET", f"http://{answering_host}/503?Retry-After={in_an_hour}", {}, None, 5.0)
    assert 3000 < float(response.headers["Retry-After"]) <= 3600
    session.close()


def test_a_successful_answer_offers_no_header_but_its_warnings(answering_host: str) -> None:
    # Every header line handed to a Python callback takes the GIL back (controller.libcurl):
    # libcurl keeps them, except those of the responses read for warnings (next test).
    session = CurlSession(TlsOptions())
    response = session.request(
        "GET", f"http://{answering_host}/200?Content-Type=application/json", {}, None, 5.0
    )
    assert (response.status, response.reason, response.data) == (200, "OK", b'{"kind": "Status"}')
    assert dict(response.headers) == {}
    assert response.warnings == ()
    session.close()


def test_each_thread_reads_warnings_from_its_first_answer_then_once_per_interval(
    answering_host: str,
) -> None:
    now = [0.0]
    session = CurlSession(TlsOptions(), warnings_every=30.0, clock=lambda: now[0])
    header_values = ('299 - "dropped"', '299 - "b"')
    warned = f"http://{answering_host}/200?" + "&".join(f"Warning={quote(value)}" for value in header_values)

    def warnings() -> tuple[str, ...]:
        response = session.request("GET", warned, {}, None, 5.0)
        assert response.data == b'{"kind": "Status"}', "headers never mix into the body"
        return response.warnings

    assert warnings() == header_values, "a thread's first answer"
    now[0] = 29.9
    assert warnings() == (), "not read again within the interval"
    with ThreadPoolExecutor(1) as other:
        assert other.submit(warnings).result() == header_values, "another thread's first"
    now[0] = 30.0
    assert warnings() == header_values, "read again once the interval is over"
    assert warnings() == ()
    session.close()


@pytest.mark.parametrize(
    ("code", "sent", "error_type", "post_retried"),
    [
        (pycurl.E_COULDNT_CONNECT, False, urllib3.exceptions.NewConnectionError, True),
        (pycurl.E_COULDNT_RESOLVE_HOST, False, urllib3.exceptions.NewConnectionError, True),
        (pycurl.E_OPERATION_TIMEDOUT, False, urllib3.exceptions.ConnectTimeoutError, True),
        (pycurl.E_OPERATION_TIMEDOUT, True, urllib3.exceptions.ReadTimeoutError, False),
        (pycurl.E_GOT_NOTHING, True, urllib3.exceptions.ProtocolError, False),
        (pycurl.E_RECV_ERROR, True, urllib3.exceptions.ProtocolError, False),
        (pycurl.E_SEND_ERROR, True, urllib3.exceptions.ProtocolError, False),
        (pycurl.E_PEER_FAILED_VERIFICATION, False, urllib3.exceptions.SSLError, False),
        (pycurl.E_SSL_CONNECT_ERROR, False, urllib3.exceptions.SSLError, False),
    ],
)
def test_libcurl_failures_become_the_errors_the_retry_policy_classifies(
    code: int, sent: bool, error_type: type[Exception], post_retried: bool
) -> None:
    error = transport_error(code, "message", "https://api/x", sent=sent)
    assert type(error) is error_type
    assert f"libcurl error {code}" in str(error)
    assert is_transient(error, "POST") is post_retried, "a POST repeats only if it never left"


@pytest.mark.parametrize(
    ("settings", "uses_libcurl"),
    [
        ({}, True),
        ({"verify_ssl": False}, True),
        ({"ssl_ca_cert": "/ca.crt", "cert_file": "/c.crt", "key_file": "/c.key"}, True),
        ({"proxy": "http://proxy:3128"}, False),
        ({"tls_server_name": "kubernetes.default"}, False),
        ({"assert_hostname": False}, False),
        ({"socket_options": []}, False),
    ],
)
def test_libcurl_serves_only_configurations_it_sends_as_urllib3_would(
    settings: dict[str, Any], uses_libcurl: bool
) -> None:
    configuration = Configuration(host="https://api:6443")
    for name, value in settings.items():
        setattr(configuration, name, value)
    assert serves(configuration) is uses_libcurl
    kube = Kube(configuration, Metrics(process_collector=False))
    assert (kube._rest.curl is not None) is uses_libcurl
    kube.close()


class SilentServer:
    """Accepts connections, reads what arrives, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.received = bytearray()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while data := conn.recv(65536):
            self.received.extend(data)

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_post_without_answer_times_out_as_a_read_and_is_sent_once(silent: SilentServer) -> None:
    kube = Kube(
        Configuration(host=f"http://{silent.host}"), Metrics(process_collector=False), request_timeout=0.5
    )
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        kube.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "ns"}})
    assert silent.received.count(b"POST /api/v1/namespaces/ns/configmaps") == 1, "never repeated"
    kube.close()


def test_requests_over_tls_with_client_certificates_from_many_threads(kube: Kube, namespace: str) -> None:
    assert kube._rest.curl is not None, "the admin kubeconfig is served by libcurl"

    def write(i: int) -> str:
        made = kube.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}", "namespace": namespace}})
        patched = kube.patch(CONFIGMAPS, ObjectKey(namespace, f"cm-{i}"), {"data": {"i": str(i)}})
        assert patched["metadata"]["resourceVersion"] != made["metadata"]["resourceVersion"]
        return str(kube.get(CONFIGMAPS, ObjectKey(namespace, f"cm-{i}"))["data"]["i"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(write, range(24))) == [str(i) for i in range(24)]
    with pytest.raises(ApiException) as conflict:
        kube.create(CONFIGMAPS, {"metadata": {"name": "cm-0", "namespace": namespace}})
    assert conflict.value.status == 409
    assert (
        conflict.value.headers is not None
        and conflict.value.headers.get("content-type") == "application/json"
    )
    assert len(kube.list(CONFIGMAPS, namespace, page_size=5)) == 24


def test_a_server_certificate_from_another_ca_fails_as_a_tls_error(control_plane: Any, tmp_path: Any) -> None:
    configuration = control_plane.admin_configuration()
    configuration.ssl_ca_cert = str(ensure_pki(tmp_path / "another-pki").ca_cert)  # another CA
    kube = Kube(configuration, Metrics(process_collector=False))
    assert kube._rest.curl is not None
    with pytest.raises(ApiException) as raised:
        kube.request("GET", "/api/v1/namespaces", retry=False)
    assert raised.value.status == 0
    assert "SSLError" in str(raised.value.reason)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value.reason), "named as Python's ssl names it"
    host = configuration.host.removeprefix("https://")
    assert kube.metrics.registry.get_sample_value(
        "rest_client_requests_total", {"code": "<error>", "method": "GET", "host": host}
    )
    kube.close()


@pytest.fixture
def server_host() -> Iterator[str]:
    """A server that answers every request with the request's own header lines, in JSON."""

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _echo(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps({"headers": str(self.headers)}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = do_PATCH = do_DELETE = _echo

        def log_message(self, format: str, *args: object) -> None:
            pass

    with _served(Echo) as host:
        yield host


def test_a_bodiless_put_says_its_length_and_a_threads_handle_goes_with_it(server_host: str) -> None:
    session = CurlSession(TlsOptions())
    seen: list[CurlResponse] = []

    def put() -> None:
        seen.append(session.request("PUT", f"http://{server_host}/echo", {}, None, 5.0))

    thread = threading.Thread(target=put)
    thread.start()
    thread.join()
    assert seen[0].status == 200
    assert b"content-length: 0" in seen[0].data.lower()
    del thread
    gc.collect()
    assert len(session._handles) == 0, "the ended thread's handle (and its connection) is gone"
    session.close()


def test_libcurl_refuses_a_post_which_it_could_send_twice(server_host: str) -> None:
    # libcurl repeats a request whose kept-alive connection died before the answer: a POST
    # could create twice, so it goes this way only when its caller vouches a repeat is harmless.
    session = CurlSession(TlsOptions())
    with pytest.raises(ValueError, match="POST is not safe to repeat"):
        session.request("POST", f"http://{server_host}/echo", {}, b"{}", 5.0)
    assert (
        session.request("POST", f"http://{server_host}/echo", {}, b"{}", 5.0, repeat_safe=True).status == 200
    )
    session.close()


def test_kube_sends_posts_with_urllib3_and_everything_else_with_libcurl(
    server_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = Kube(Configuration(host=f"http://{server_host}"), Metrics(process_collector=False))
    assert kube._rest.curl is not None
    sent_by_curl: list[str] = []
    original = CurlSession.request

    def recording(self: CurlSession, method: str, *args: Any, **kwargs: Any) -> CurlResponse:
        sent_by_curl.append(method)
        return original(self, method, *args, **kwargs)

    monkeypatch.setattr(CurlSession, "request", recording)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        kube.request(method, "/echo", body={}, retry=False)
    assert sent_by_curl == ["PUT", "PATCH", "DELETE"]
    sent_by_curl.clear()
    kube.create_event({"metadata": {"generateName": "r.", "namespace": "ns"}})
    assert sent_by_curl == [], "an Event the server names could be created twice"
    kube.create_event({"metadata": {"name": "r.17", "namespace": "ns"}})
    assert sent_by_curl == ["POST"], "an Event named by its sender can only be created once"
    kube.close()


class _ForgetfulAfterFirst(BaseHTTPRequestHandler):
    """Creates objects by name (409 AlreadyExists for a name it has), and drops each kept-alive
    connection unanswered at its second request: the case in which libcurl sends it again."""

    protocol_version = "HTTP/1.1"
    names: list[str] = []

    def do_POST(self) -> None:
        name = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["metadata"]["name"]
        self.names.append(name)
        self.served = getattr(self, "served", 0) + 1
        if self.served > 1:
            self.close_connection = True  # read, perhaps acted on, never answered
            return
        exists = self.names.count(name) > 1
        status = {"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409}
        data = json.dumps(status if exists else {"metadata": {"name": name, "namespace": "ns"}}).encode()
        self.send_response(409 if exists else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_event_post_libcurl_repeats_is_created_once_and_reported_created() -> None:
    with _served(_ForgetfulAfterFirst) as host:
        kube = Kube(Configuration(host=f"http://{host}"), Metrics(process_collector=False))
        try:
            assert (
                kube.create_event({"metadata": {"name": "r.1", "namespace": "ns"}})["metadata"]["name"]
                == "r.1"
            )
            # The kept-alive connection is dropped at this one: libcurl sends it again on a new
            # connection, which finds the Event there.
            second = {"metadata": {"name": "r.2", "namespace": "ns"}, "reason": "Submitted"}
            assert kube.create_event(second) == second
            assert _ForgetfulAfterFirst.names == ["r.1", "r.2", "r.2"], "sent twice, answered once"
        finally:
            kube.close()


def test_an_event_created_twice_against_the_api_server_is_reported_created(
    kube: Kube, namespace: str
) -> None:
    event = {
        "metadata": {"name": "r.1", "namespace": namespace},
        "involvedObject": {"kind": "ConfigMap", "name": "r", "namespace": namespace},
        "reason": "Submitted",
        "message": "created",
        "type": "Normal",
    }
    assert kube.create_event(event)["metadata"]["uid"], "created by the API server"
    assert kube.create_event(event) == event, "AlreadyExists: the first attempt wrote it"
