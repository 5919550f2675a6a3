"""Time as the KFP API server stores and writes it: whole Unix seconds, RFC 3339 on the wire."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

# The server writes timestamps it has not set as the epoch, not as absent fields (docs/emulator.md §3).
EPOCH_TEXT = "1970-01-01T00:00:00Z"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$",
)


def now_seconds() -> int:
    """The current time truncated to whole seconds, as the server's DB columns hold it."""
    return int(time.time())


def format_timestamp(seconds: int | None) -> str:
    """RFC 3339 with whole seconds and a ``Z``; ``None`` and 0 are the epoch."""
    if not seconds:
        return EPOCH_TEXT
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> int:
    """Parses an RFC 3339 timestamp (a zone is required, as protojson requires) to Unix seconds."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"invalid google.protobuf.Timestamp value {text!r}")
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    zone = match.group(8)
    if zone in ("Z", "z"):
        tzinfo = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
    moment = datetime(year, month, day, hour, minute, second, tzinfo=tzinfo)
    return int(moment.timestamp())
