"""Liveness and readiness probes: ``/healthz`` and ``/readyz``, as controller-runtime serves them.

Each endpoint runs a set of named checks; a check returns ``None`` when healthy or a reason.
The response is ``200 ok`` when every check passes and ``500`` otherwise; ``?verbose`` lists
each check (``[+]name ok`` / ``[-]name failed: reason``) in either case, like the API server's
own health endpoints.

The manager registers: ``ping`` on both; on ``/readyz`` also ``informers`` (every informer
has synced) and ``leader-election`` (the elector is running: this instance is the leader or a
standby). A standby is therefore ready, so a rolling update does not wait for leadership.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from controller.httpserver import HttpServer

Check = Callable[[], str | None]


class Checks:
    """A thread-safe, ordered set of named checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        with self._lock:
            self._checks[name] = check

    def run(self) -> list[tuple[str, str | None]]:
        with self._lock:
            checks = list(self._checks.items())
        results = []
        for name, check in checks:
            try:
                results.append((name, check()))
            except Exception as err:  # a failing check is a failed check, not a crashed server
                results.append((name, f"{type(err).__name__}: {err}"))
        return results


def ping() -> str | None:
    return None


class HealthServer:
    """Serves ``/healthz`` (liveness) and ``/readyz`` (readiness) on one address."""

    def __init__(self, address: str) -> None:
        self.live = Checks()
        self.ready = Checks()
        self.live.add("ping", ping)
        self.ready.add("ping", ping)
        endpoints = {"/healthz": self.live, "/livez": self.live, "/readyz": self.ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                checks = endpoints.get(url.path.rstrip("/") or "/")
                if checks is None:
                    self._reply(404, "not found\n")
                    return
                results = checks.run()
                failed = [name for name, reason in results if reason is not None]
                if "verbose" in parse_qs(url.query, keep_blank_values=True):
                    lines = [f"[+]{n} ok" if r is None else f"[-]{n} failed: {r}" for n, r in results]
                    lines.append(f"{url.path.strip('/')} check {'failed' if failed else 'passed'}")
                    body = "\n".join(lines) + "\n"
                elif failed:
                    body = "".join(f"[-]{name} failed\n" for name in failed) + "check failed\n"
                else:
                    body = "ok"
                self._reply(500 if failed else 200, body)

            def _reply(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the logs

        self._server = HttpServer("health", address, Handler)

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
