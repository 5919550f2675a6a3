"""A small threaded HTTP server for the metrics and health endpoints.

The standard library's ``ThreadingHTTPServer`` is enough for two tiny, read-only endpoints
that are scraped every few seconds; a web framework would add a dependency and nothing else.
Bind addresses use Go's notation, as controller-runtime's flags do: ``host:port``,
``:port`` for all interfaces, ``[::1]:port`` for IPv6, and ``"0"`` for "do not serve".
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpServer:
    """Serves ``handler`` on ``address`` from a daemon thread until :meth:`stop`."""

    def __init__(self, name: str, address: str, handler: type[BaseHTTPRequestHandler]) -> None:
        self.name = name
        bind = parse_bind_address(address)
        if bind is None:
            raise ValueError(f"{name}: address 0 means disabled")
        server_class = _Server6 if ":" in bind[0] else _Server
        self._server = server_class(bind, handler)
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
