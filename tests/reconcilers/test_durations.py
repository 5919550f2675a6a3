from __future__ import annotations

from datetime import timedelta

import pytest

from reconcilers.durations import InvalidDuration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("-1s", timedelta(seconds=-1)),
    ],
)
def test_go_durations_parse(text, expected) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "abc", "10 m", "1d", "m10", "1h-1m"])
def test_invalid_durations_are_rejected(text) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(text)
