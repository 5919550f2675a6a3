"""A small threaded HTTP server for the metrics and health endpoints.

The standard library's ``ThreadingHTTPServer`` is enough for two tiny, read-only endpoints
that are scraped every few seconds; a web framework would add a dependency and nothing else.
Bind addresses use Go's notation, as controller-runtime's flags do: ``host:port``,
``:port`` for all interfaces, ``[::1]:port`` for IPv6, and ``"0"`` for "do not serve".

With ``tls`` (a function returning the ``ssl.SSLContext`` for the next connection) the server
speaks HTTPS. The TLS handshake happens in the connection's own thread, under a timeout, so a
slow or silent client never holds up the accept loop.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

log = structlog.get_logger("controller.httpserver")

# How long a TLS client may take to complete its handshake.
HANDSHAKE_TIMEOUT = 10.0


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """Returns ``(host, port)`` for a Go-style bind address, or ``None`` for ``"0"``."""
    if address == "0":
        return None
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - ":port" means all interfaces, as in Go
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    name = ""
    tls: Callable[[], ssl.SSLContext] | None = None

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            connection = self.tls().wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(HANDSHAKE_TIMEOUT)
            request.do_handshake()
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that speaks plain HTTP to the HTTPS port, fails the handshake or hangs up
        # early is not worth a traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError):
            log.debug("connection failed", server=self.name, client=str(client_address), error=str(error))
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpServer:
    """Serves ``handler`` on ``address`` from a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        name: str,
        address: str,
        handler: type[BaseHTTPRequestHandler],
        *,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.name = name
        bind = parse_bind_address(address)
        if bind is None:
            raise ValueError(f"{name}: address 0 means disabled")
        server_class = _Server6 if ":" in bind[0] else _Server
        self._server = server_class(bind, handler)
        self._server.name = name
        self._server.tls = tls
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"http-{name}", daemon=True
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
