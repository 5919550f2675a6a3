"""Logging: JSON lines with context, the console renderer, and secrets never reaching output."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from controller.logs import (
    _VALUE_PATTERNS,
    REDACTED,
    _is_sensitive_key,
    _redact,
    configure_logging,
    reconcile_context,
    redact_secrets,
    redact_text,
)

SECRETS = ("s3cr3t-token", "hunter2", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "abc123def")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(logging.NOTSET)


def test_secret_fields_and_secrets_in_text_are_redacted() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "request failed: Authorization: Bearer s3cr3t-token",
            "token": "s3cr3t-token",
            "password": "hunter2",
            "headers": {"Authorization": "Bearer s3cr3t-token", "Accept": "application/json"},
            "url": "https://admin:hunter2@kfp.example/api?token=abc123def&page=2",
            "detail": ["jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl seen"],
            "body": "{'password': 'hunter2', 'user': 'me'}",
            "tokenPath": "/var/run/secrets/token",
            "count": 3,
        },
    )
    rendered = json.dumps(event)
    for secret in SECRETS:
        assert secret not in rendered
    assert event["token"] == REDACTED and event["password"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert event["url"] == f"https://admin:{REDACTED}@kfp.example/api?token={REDACTED}&page=2"
    assert "user': 'me'" in event["body"]
    assert event["tokenPath"] == "/var/run/secrets/token", "where a secret lives is not a secret"
    assert event["count"] == 3


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_context_and_never_secrets() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    log = structlog.get_logger("test")
    with (
        reconcile_context({"controller": "run", "namespace": "ns", "name": "r1", "reconcileID": "id-1"}),
        structlog.contextvars.bound_contextvars(kfpRun="k1"),
    ):
        log.info("calling KFP", authorization="Bearer s3cr3t-token")
        try:
            raise RuntimeError("401 for token=abc123def")
        except RuntimeError:
            log.exception("failed")
    log.debug("hidden at info level")
    logging.getLogger("urllib3").warning("sending header Authorization: Bearer s3cr3t-token")

    text = out.getvalue()
    for secret in SECRETS:
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["msg"] for line in lines] == [
        "calling KFP",
        "failed",
        "sending header Authorization: Bearer [REDACTED]",
    ]
    first = lines[0]
    assert {first[k] for k in ("controller", "namespace", "name", "reconcileID")} == {
        "run",
        "ns",
        "r1",
        "id-1",
    }
    assert first["kfpRun"] == "k1"
    assert first["level"] == "info" and first["logger"] == "test" and first["timestamp"].endswith("Z")
    assert "RuntimeError" in lines[1]["exception"]
    assert lines[2]["logger"] == "urllib3"


@pytest.mark.usefixtures("restore_logging")
def test_console_format_and_level() -> None:
    out = io.StringIO()
    configure_logging("debug", "console", stream=out)
    structlog.get_logger("test").debug("visible", password="hunter2")
    text = out.getvalue()
    assert "visible" in text and "hunter2" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


@pytest.mark.usefixtures("restore_logging")
def test_format_defaults_to_json_when_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("info", "", stream=out)
    structlog.get_logger("test").info("hello")
    assert json.loads(out.getvalue())["msg"] == "hello"


@pytest.mark.usefixtures("restore_logging")
def test_urllib3_request_lines_are_not_logged_even_at_debug_level() -> None:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    # As urllib3 logs every request: the path and query of a webhook URL hold its credentials.
    logging.getLogger("urllib3.connectionpool").debug('"POST /services/T0/B0/abc123def HTTP/1.1" 200 0')
    structlog.get_logger("test").debug("visible")

    assert [json.loads(line)["msg"] for line in out.getvalue().splitlines()] == ["visible"]


@given(st.text(alphabet=st.sampled_from(list("abeyJkotnwsr:/@ =.-'\"BPAT0123")), max_size=60))
def test_text_without_a_secret_marker_is_returned_as_it_is_and_other_text_fully_redacted(text: str) -> None:
    full = text
    for pattern, replacement in _VALUE_PATTERNS:
        full = pattern.sub(replacement, full)
    assert redact_text(text) == full


_FIELD_TEXT = st.text(alphabet=st.sampled_from(list("abeyJkotnwsr:/@ =.-'\"BPAT0123")), max_size=30)


@given(
    st.dictionaries(
        st.sampled_from(["msg", "name", "token", "url", "reason", "tokenPath", "count"]),
        st.one_of(_FIELD_TEXT, st.integers(), st.none(), st.lists(_FIELD_TEXT, max_size=2)),
        max_size=5,
    )
)
def test_a_whole_line_is_redacted_as_each_of_its_fields_would_be(event: dict[str, object]) -> None:
    # Lines with nothing to redact are let through after one scan of all their text; that
    # shortcut must never let through what the field-by-field pass would have blanked.
    by_field = {k: REDACTED if _is_sensitive_key(k) and v else _redact(v) for k, v in event.items()}
    assert redact_secrets(None, "info", dict(event)) == by_field


class _OverlapDetectingStream(io.StringIO):
    """Counts writes that began while another thread's write was still going on."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = False
        self.overlaps = 0

    def write(self, text: str) -> int:
        if self.writing:
            self.overlaps += 1
        self.writing = True
        for _ in range(20):
            os.sched_yield()  # gives the other thread every chance to write now
        written = super().write(text)
        self.writing = False
        return written


@pytest.mark.usefixtures("restore_logging")
def test_structlog_and_library_lines_never_interleave() -> None:
    out = _OverlapDetectingStream()
    configure_logging("info", "json", stream=out)

    def operator_lines() -> None:
        for i in range(300):
            structlog.get_logger("test").info("operator", i=i)

    def library_lines() -> None:
        for i in range(300):
            logging.getLogger("kubernetes.client").warning("library %d", i)

    threads = [threading.Thread(target=operator_lines), threading.Thread(target=library_lines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert out.overlaps == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["msg"] for line in lines) == sorted(
        ["operator"] * 300 + [f"library {i}" for i in range(300)]
    )


@pytest.mark.usefixtures("restore_logging")
def test_values_orjson_refuses_are_still_written_as_json() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger("test").info("counted", by_code={200: 3, 404: 1}, big=2**70)
    line = json.loads(out.getvalue())
    assert line["by_code"] == {"200": 3, "404": 1} and line["big"] == 2**70
