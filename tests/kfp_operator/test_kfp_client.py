"""The KFP client's paging: the first page carries the filter and the sort order, later pages only
the token, as the real server requires."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from prometheus_client import CollectorRegistry

from kfp_operator.clients.kfp import KfpClient, KfpMetrics
from kfp_operator.settings import KfpConfig
from reconcilers.clients import KfpError

A_RUN = {
    "run_id": "a",
    "display_name": "penguin",
    "description": "kfp-operator run",
    "state": "SUCCEEDED",
    "created_at": "2026-12-06T10:00:00Z",
    "finished_at": "2026-12-06T10:05:00Z",
    "run_details": {"task_details": [{"task_id": "t", "display_name": "Trainer", "state": "SUCCEEDED"}]},
    "state_history": [{"update_time": "2026-12-06T10:05:00Z", "state": "SUCCEEDED"}],
}
PAGES = {
    "": {"runs": [A_RUN, {"run_id": "b"}], "total_size": 4, "next_page_token": "t1"},
    "t1": {"runs": [{"run_id": "c"}], "next_page_token": "t2"},
    "t2": {"runs": [{"run_id": "d"}]},
}


class RecordingKfp(BaseHTTPRequestHandler):
    queries: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        RecordingKfp.queries.append(query)
        body = json.dumps(PAGES[query.get("page_token", [""])[0]]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    RecordingKfp.queries = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingKfp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_later_pages_send_only_the_token(endpoint: str) -> None:
    client = KfpClient(KfpConfig(endpoint=endpoint), KfpMetrics(CollectorRegistry()))
    finished_since = {
        "predicates": [{"key": "finished_at", "operation": "GREATER_THAN_EQUALS", "timestamp_value": "x"}]
    }

    runs = list(client.list_runs(filter=finished_since, sort_by="finished_at", page_size=2))

    assert [r["run_id"] for r in runs] == ["a", "b", "c", "d"]
    first, *later = RecordingKfp.queries
    assert json.loads(first["filter"][0]) == finished_since
    assert first["sort_by"] == ["finished_at"]
    assert "page_token" not in first
    assert [q.get("page_token") for q in later] == [["t1"], ["t2"]]
    assert all("filter" not in q and "sort_by" not in q for q in later)
    assert all(q["page_size"] == ["2"] for q in RecordingKfp.queries)


def test_pages_carry_the_count_and_the_next_is_asked_for_only_when_the_caller_goes_on(endpoint: str) -> None:
    client = KfpClient(KfpConfig(endpoint=endpoint), KfpMetrics(CollectorRegistry()))

    pages = client.list_run_pages(filter={}, sort_by="finished_at desc")
    first = next(pages)

    assert [r["run_id"] for r in first.runs] == ["a", "b"] and first.total_size == 4
    assert len(RecordingKfp.queries) == 1
    assert next(pages).total_size is None  # a page without the field (proto3 JSON omits zeros)


def test_pages_for_the_bulk_poll_hold_only_what_it_reads_and_listings_hold_whole_runs(endpoint: str) -> None:
    client = KfpClient(KfpConfig(endpoint=endpoint), KfpMetrics(CollectorRegistry()))

    summary = next(client.list_run_pages(filter={})).runs[0]
    whole = next(client.list_runs(filter={}))

    assert summary == {k: A_RUN[k] for k in ("run_id", "state", "created_at", "finished_at")}
    assert whole == A_RUN


def test_the_bulk_polls_first_page_has_the_size_it_asks_for_and_later_pages_the_largest(
    endpoint: str,
) -> None:
    client = KfpClient(KfpConfig(endpoint=endpoint), KfpMetrics(CollectorRegistry()))

    list(client.list_run_pages(filter={}, first_page_size=20))
    list(client.list_run_pages(filter={}))

    assert [q["page_size"] for q in RecordingKfp.queries] == [["20"], ["200"], ["200"]] + [["200"]] * 3


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("call", ["get_run", "create_run"])  # over libcurl, and over urllib3
def test_a_call_that_gets_no_answer_says_what_kind_of_failure_in_words_that_do_not_vary(call: str) -> None:
    kfp = KfpClient(
        KfpConfig(endpoint=f"http://127.0.0.1:{a_closed_port()}"), KfpMetrics(CollectorRegistry())
    )
    try:
        with pytest.raises(KfpError) as raised:
            kfp.get_run("r") if call == "get_run" else kfp.create_run({"display_name": "r"})
    finally:
        kfp.close()
    assert (raised.value.status, raised.value.failure) == (None, "cannot connect")
    assert "127.0.0.1" in raised.value.message  # the details stay in the message, for the log
