"""The probe endpoints: /healthz and /readyz with named checks, as controller-runtime serves them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from controller.health import HealthServer


@pytest.fixture
def server() -> Iterator[HealthServer]:
    health = HealthServer("127.0.0.1:0")
    health.start()
    yield health
    health.stop()


def get(server: HealthServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_live_and_ready_when_every_check_passes(server: HealthServer) -> None:
    server.ready.add("informers", lambda: None)
    assert get(server, "/healthz") == (200, "ok")
    assert get(server, "/readyz") == (200, "ok")
    status, body = get(server, "/readyz?verbose")
    assert status == 200 and "[+]ping ok\n[+]informers ok\n" in body


def test_not_ready_while_a_check_fails_but_still_live(server: HealthServer) -> None:
    synced = {"done": False}
    server.ready.add("informers", lambda: None if synced["done"] else "not synced: runs")
    status, body = get(server, "/readyz")
    assert status == 500 and "[-]informers failed" in body and "not synced" not in body
    status, body = get(server, "/readyz?verbose")
    assert status == 500 and "[-]informers failed: not synced: runs" in body
    assert get(server, "/healthz")[0] == 200, "readiness problems do not make the process unhealthy"
    synced["done"] = True
    assert get(server, "/readyz")[0] == 200


def test_a_check_that_raises_is_a_failed_check(server: HealthServer) -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    server.live.add("broken", broken)
    status, body = get(server, "/healthz?verbose")
    assert status == 500 and "[-]broken failed: RuntimeError: boom" in body


def test_unknown_paths_are_404(server: HealthServer) -> None:
    assert get(server, "/metrics")[0] == 404
