"""The Ready summary of a RunConfiguration, which kstatus-based tools read."""

from __future__ import annotations

import pytest

from reconcilers.runconfiguration.status import ready


@pytest.mark.parametrize(
    ("synchronized", "expected"),
    [
        (None, ("False", "Creating")),
        (("True", "Succeeded"), ("True", "Succeeded")),
        (("Unknown", "PipelineNotFound"), ("False", "PipelineNotFound")),
        (("False", "InvalidSchedule"), ("False", "InvalidSchedule")),
    ],
)
def test_ready_follows_synchronized(synchronized: tuple[str, str] | None, expected: tuple[str, str]) -> None:
    conditions = (
        []
        if synchronized is None
        else [{"type": "Synchronized", "status": synchronized[0], "reason": synchronized[1], "message": "m"}]
    )

    summary = ready(conditions)

    assert (summary.type, summary.status, summary.reason) == ("Ready", *expected)
