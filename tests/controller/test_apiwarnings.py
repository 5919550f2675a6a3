"""API server warnings: the header's values parsed as client-go parses them (compared with
client-go's own parser, hack/warning-parse), each warning logged once, and the real API server's
warnings reaching the log from both transports."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller.apiwarnings import WarningLogger, parse_warnings
from controller.keys import ObjectKey
from controller.kube import Kube
from controller.resource import CONFIGMAPS

REPO = Path(__file__).resolve().parents[2]

TABLE: list[tuple[list[str], list[str]]] = [
    ([], []),
    (['299 - "unknown field \\"status.x\\""'], ['unknown field "status.x"']),
    (['299 kube-apiserver "a", 299 - "b"'], ["a", "b"]),
    (['299 - "a" "Mon, 07 Dec 2026 14:44:19 GMT"'], ["a"]),
    (['299 - "a"', '299 - "b"'], ["a", "b"]),
    (['199 - "miscellaneous"', '299 - "kept"'], ["kept"]),
    (['299 - "back\\\\slash"'], ["back\\slash"]),
    (['299 - "a", garbage, 299 - "b"'], ["a"]),
    (["not a warning"], []),
    (['299 - "unterminated'], []),
    (['299 - ""'], [""]),
    (['  299 - "a"  ,  299 - "b"  '], ["a", "b"]),
    (['299 - "a"  "date" , 299 - "b"'], ["a", "b"]),
    (['299 - "a" x'], []),
    (['299 - "a\tb"'], []),
    (['299 - "a" "unterminated date'], []),
    (['2990 - "a"'], []),
]


@pytest.mark.parametrize(("values", "texts"), TABLE)
def test_warning_values_are_parsed_as_client_go_parses_them(values: list[str], texts: list[str]) -> None:
    assert parse_warnings(values) == texts


def _generated(count: int) -> list[list[str]]:
    """Header values made of the pieces a warning is made of, most of them malformed."""
    rng = random.Random(7)
    pieces = ["2", "9", "1", " ", "-", '"', "\\", ",", "a", "é", "\t", '299 - "', '" ']
    return [
        ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(rng.randint(1, 2))]
        for _ in range(count)
    ]


def test_the_parser_agrees_with_client_gos_own() -> None:
    built = subprocess.run(
        ["bash", str(REPO / "hack" / "build-warning-parse.sh")], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, f"hack/build-warning-parse.sh failed:\n{built.stderr}"
    binary = Path(built.stdout.strip().splitlines()[-1]) / "warning-parse"
    cases = [values for values, _ in TABLE] + _generated(3000)
    answered = subprocess.run(
        [str(binary)],
        input="".join(json.dumps(values) + "\n" for values in cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert len(answered) == len(cases)
    differing = [
        (values, json.loads(go), parse_warnings(values))
        for values, go in zip(cases, answered, strict=True)
        if json.loads(go) != parse_warnings(values)
    ]
    assert differing == [], f"(values, client-go, ours): {differing[:10]}"


def _warnings(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["warning"] for entry in logs if entry["event"] == "API server warning"]


def test_each_distinct_warning_is_logged_once() -> None:
    handler = WarningLogger()
    with capture_logs() as logs:
        handler(['299 - "a"'])
        handler(['299 - "a", 299 - "b"'])
        handler([])
        handler(['299 - "b"'])
    assert _warnings(logs) == ["a", "b"]
    assert {entry["log_level"] for entry in logs} == {"warning"}


def test_the_logger_forgets_the_oldest_warnings_beyond_its_bound() -> None:
    handler = WarningLogger(remembered=2)
    with capture_logs() as logs:
        for text in ("a", "b", "a", "c", "b", "a"):
            handler([f'299 - "{text}"'])
    # Seeing "a" again makes it the most recent, so "b" is the one forgotten for "c"; then "b"
    # is news again, and pushes out "a".
    assert _warnings(logs) == ["a", "b", "c", "b", "a"]


def _in_new_thread(call: Any) -> Any:
    """Runs ``call`` on a thread of its own: libcurl reads a thread's first response's headers."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join()
    return result[0]


def test_the_api_servers_warnings_about_dropped_fields_are_logged_once(kube: Kube, namespace: str) -> None:
    assert kube._rest.curl is not None, "patches go over libcurl"
    created_field, patched_field = f"created{uuid.uuid4().hex}", f"patched{uuid.uuid4().hex}"
    key = ObjectKey(namespace, "dropped-fields")
    with capture_logs() as logs:
        # A POST goes over urllib3; the patches over libcurl, each from a thread's first request.
        kube.create(CONFIGMAPS, {"metadata": {"name": key.name, "namespace": namespace}, created_field: 1})
        for _ in range(2):
            _in_new_thread(lambda: kube.patch(CONFIGMAPS, key, {patched_field: 1, "data": {"a": "b"}}))
    assert _warnings(logs) == [f'unknown field "{created_field}"', f'unknown field "{patched_field}"']
    assert kube.get(CONFIGMAPS, key)["data"] == {"a": "b"}, "the request itself succeeded"
