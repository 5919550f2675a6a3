"""Go-style durations (``90s``, ``10m``, ``1h30m``, ``-1s``), as Kubernetes users write them."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class InvalidDuration(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """Parses a duration as Go's ``time.ParseDuration`` does (``0`` alone is allowed)."""
    raw = text.strip()
    sign = -1.0 if raw.startswith("-") else 1.0
    body = raw.lstrip("+-")
    if body == "0":
        return timedelta(0)
    if not body:
        raise InvalidDuration(f"{text!r} is not a duration (for example 30s, 10m, 1h30m)")
    position, seconds = 0, 0.0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        raise InvalidDuration(f"{text!r} is not a duration (for example 30s, 10m, 1h30m)")
    return timedelta(seconds=sign * seconds)


def format_duration(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    return f"{seconds:g}s"
