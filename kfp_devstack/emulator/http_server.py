"""The emulator's HTTP server: routing, authentication, faults and call counting.

A stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive. Routes are URL
templates in grpc-gateway style (``/apis/v2beta1/runs/{run_id}:terminate``); a path
parameter never spans a ``/`` or a ``:``, so custom verbs route separately, and
unmatched paths and methods get grpc-gateway's own 404 and 405 bodies.

Every call to a KFP route is counted under ``"<METHOD> <template>"`` before anything
else happens, then injected faults apply, then (multi-user) authentication, then the
handler. Control routes (the emulator's own API) are neither counted nor faulted.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from kfp_devstack.emulator import errors
from kfp_devstack.emulator.auth import Authenticator
from kfp_devstack.emulator.call_counter import CallCounter
from kfp_devstack.emulator.errors import ApiError, Code, UploadError
from kfp_devstack.emulator.faults import Fault, FaultBook

LOG = logging.getLogger(__name__)

RouteKind = Literal["api", "upload", "public", "control"]
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    raw_query: str = ""  # as sent, for forwarding (the server unescapes filters twice)

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class RawBody:
    """A body sent as is, such as a real server's answer passed through."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class Response:
    status: int
    payload: Any  # JSON-serialisable, or RawBody


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    kind: RouteKind
    handler: Handler
    pattern: re.Pattern[str]


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, kind: RouteKind = "api") -> None:
        regex = ""
        position = 0
        for match in _PARAMETER.finditer(template):
            regex += re.escape(template[position : match.start()]) + f"(?P<{match.group(1)}>[^/:]+)"
            position = match.end()
        regex += re.escape(template[position:])
        self._routes.append(Route(method, template, kind, handler, re.compile(f"^{regex}$")))

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, whether the path matched some route under another method)."""
        path_matched = False
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != method:
                path_matched = True
                continue
            return route, {name: unquote(value) for name, value in match.groupdict().items()}, True
        return None, {}, path_matched

    def forwarding(self, handler: Handler) -> Router:
        """The same routes with every KFP handler replaced by ``handler`` (control routes kept)."""
        router = Router()
        router._routes = [
            route
            if route.kind == "control"
            else Route(route.method, route.template, route.kind, handler, route.pattern)
            for route in self._routes
        ]
        return router


class ApiServer:
    def __init__(
        self,
        router: Router,
        *,
        host: str,
        port: int,
        faults: FaultBook,
        calls: CallCounter,
        authenticator: Authenticator | None,
        fallback: Handler | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._router = router
        self._fallback = fallback  # answers unrouted KFP paths (a real server behind a proxy)
        self._faults = faults
        self._calls = calls
        self._authenticator = authenticator
        self._httpd = _Server((host, port), _RequestHandler)
        self._httpd.app = self
        self.scheme = "http"
        if tls is not None:
            # The handshake happens in the request's thread, so a silent client blocks no one.
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="kfp-http", daemon=True)
        self._thread.start()
        LOG.info("KFP API listening on %s://%s:%d", self.scheme, self.host, self.port)

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, so only after start()
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def handle(self, exchange: _RequestHandler, request: Request) -> None:
        route, params, path_matched = self._router.resolve(request.method, request.path)
        if route is None:
            if request.path.startswith("/apis/"):
                self._calls.record(f"{request.method} {request.path}")
                if self._fallback is not None:  # the real server answers, wrong methods included
                    exchange.send_response_object(self._fallback(request))
                    return
            if path_matched:
                exchange.send_json(501, errors.gateway(Code.UNIMPLEMENTED, "Method Not Allowed").body())
            else:
                exchange.send_json(404, errors.gateway(Code.NOT_FOUND, "Not Found").body())
            return
        request = Request(
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
            params,
            request.raw_query,
        )
        if route.kind == "control":
            exchange.send_response_object(self._run(route, request))
            return
        self._calls.record(f"{request.method} {route.template}")
        faults = self._faults.take(request.method, request.path, route.template)
        for fault in faults:
            if fault.kind == "latency":
                time.sleep(fault.seconds)
        error_fault = next((fault for fault in faults if fault.kind == "error"), None)
        if error_fault is not None:
            exchange.send_json(error_fault.status, _fault_body(error_fault, route))
            return
        response = self._authenticate(route, request) or self._run(route, request)
        drop = next((fault for fault in faults if fault.kind == "drop_response"), None)
        if drop is not None:
            exchange.drop(drop.seconds)
            return
        exchange.send_response_object(response)

    def _authenticate(self, route: Route, request: Request) -> Response | None:
        if self._authenticator is None or route.kind not in ("api", "upload"):
            return None
        try:
            self._authenticator.check(request.headers)
        except ApiError as err:
            if route.kind == "upload":
                return Response(
                    err.http_status, UploadError(err.http_status, err.detail or err.message).body()
                )
            return Response(err.http_status, err.body())
        return None

    def _run(self, route: Route, request: Request) -> Response:
        try:
            return route.handler(request)
        except ApiError as err:
            return Response(err.http_status, err.body())
        except UploadError as err:
            return Response(err.status, err.body())
        except Exception as err:
            LOG.exception("%s %s failed", request.method, request.path)
            return Response(500, errors.gateway(Code.INTERNAL, f"Internal error: {err}").body())


def _fault_body(fault: Fault, route: Route) -> Any:
    if fault.body is not None:
        return fault.body
    if route.kind == "upload":
        return UploadError(fault.status, "Failed to create a pipeline and a pipeline version").body()
    return errors.status_body_for_http(fault.status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5; a burst of new connections (the bench's capacity
    # probe opens 32 at once) would overflow it and see connections reset.
    request_queue_size = 128
    block_on_close = False
    allow_reuse_address = True
    app: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that does not trust the certificate, or hangs up, is the client's business.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            LOG.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            raw_query=url.query,
        )
        self.server.app.handle(self, request)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_response_object(self, response: Response) -> None:
        if isinstance(response.payload, RawBody):
            self.send_bytes(response.status, response.payload.data, response.payload.content_type)
        else:
            self.send_json(response.status, response.payload)

    def send_json(self, status: int, payload: Any) -> None:
        self.send_bytes(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json")

    def send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def drop(self, hold_seconds: float) -> None:
        """Closes the connection without answering: after ``hold_seconds``, with a TCP reset."""
        if hold_seconds > 0:
            time.sleep(hold_seconds)
        self.close_connection = True
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s - %s", self.address_string(), format % args)
