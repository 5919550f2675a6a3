"""Kubernetes and KFP timestamps: RFC 3339, UTC, whole seconds."""

from __future__ import annotations

from datetime import UTC, datetime

# KFP reports times it has not set (a running run's finished_at) as the epoch.
KFP_UNSET = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """Parses an RFC 3339 time; ``None`` for a missing value or KFP's unset epoch."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None if moment <= KFP_UNSET else moment
