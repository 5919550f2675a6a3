"""What a resource says while a KFP call fails: the same words for the same cause."""

from __future__ import annotations

import pytest

from reconcilers.clients import KfpError
from reconcilers.kfp_waits import waiting_on_kfp

TIMED_OUT = "ReadTimeoutError: None: libcurl error 28: Operation timed out after {} milliseconds"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            KfpError("list_runs", None, TIMED_OUT.format(10001), failure="no answer in time"),
            ("KfpUnavailable", "KFP list_runs: no answer in time; retrying"),
        ),
        (
            KfpError("create_run", None, "OSError: boom"),
            ("KfpUnavailable", "KFP create_run: no answer; retrying"),
        ),
        (
            KfpError("create_run", 503, "HTTP 503: upstream connect error"),
            ("KfpUnavailable", "KFP create_run: HTTP 503: upstream connect error; retrying"),
        ),
        (
            KfpError("create_experiment", 403, "HTTP 403: User 'u' is not authorized"),
            ("KfpRequestFailed", "KFP create_experiment: HTTP 403: User 'u' is not authorized; retrying"),
        ),
    ],
)
def test_the_reason_and_message(error: KfpError, said: tuple[str, str]) -> None:
    assert waiting_on_kfp(error) == said


def test_timeouts_of_different_lengths_read_the_same() -> None:
    """A status rewritten for each timeout would set off a reconcile at once, and an Event, each time."""
    first, second = (
        KfpError("list_runs", None, TIMED_OUT.format(ms), failure="no answer in time")
        for ms in (10001, 10004)
    )
    assert waiting_on_kfp(first) == waiting_on_kfp(second)
