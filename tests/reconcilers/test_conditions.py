"""Conditions: transition times, messages that always fit the API server's limit, and the next status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reconcilers.api.view import ObjectView
from reconcilers.conditions import MAX_MESSAGE_LENGTH, Condition, apply_conditions, next_status

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_message_longer_than_a_condition_holds_is_cut_to_fit() -> None:
    quoted = "KFP rejected the run: " + "é" * MAX_MESSAGE_LENGTH  # two bytes each

    [condition] = apply_conditions(
        [], [Condition("Synchronized", "False", "Failed", quoted)], generation=1, now=NOW
    )

    assert len(condition["message"].encode()) <= MAX_MESSAGE_LENGTH
    assert condition["message"].startswith("KFP rejected the run: é") and condition["message"].endswith(
        " [...]"
    )


def test_a_message_that_fits_is_kept_whole() -> None:
    message = "x" * MAX_MESSAGE_LENGTH

    [condition] = apply_conditions(
        [], [Condition("Completed", "True", "Succeeded", message)], generation=1, now=NOW
    )

    assert condition["message"] == message


def _view(status: dict[str, Any], generation: int = 3) -> ObjectView:
    return ObjectView(
        {"metadata": {"name": "r", "namespace": "ns", "generation": generation}, "status": status}
    )


def test_next_status_sets_and_removes_fields_without_touching_the_cached_status() -> None:
    cached: dict[str, Any] = {"providerId": "kfp:1", "nextScheduleTime": "t", "nested": {"kept": ["a"]}}
    view = _view(cached)

    status = next_status(
        view, NOW, [Condition("Synchronized", "True", "Succeeded", "")], state="S", nextScheduleTime=None
    )

    assert status["providerId"] == "kfp:1" and status["state"] == "S" and "nextScheduleTime" not in status
    assert status["observedGeneration"] == 3
    status["nested"]["kept"].append("b")
    assert cached == {"providerId": "kfp:1", "nextScheduleTime": "t", "nested": {"kept": ["a"]}}


def test_next_status_derives_the_summary_from_the_conditions_it_applied() -> None:
    seen: list[list[str]] = []

    def summary(conditions: Sequence[Mapping[str, Any]]) -> Condition:
        seen.append([c["type"] for c in conditions])
        return Condition("Ready", "False", "Waiting", "")

    status = next_status(
        _view({}), NOW, [Condition("Synchronized", "Unknown", "Creating", "")], summary=summary
    )

    assert seen == [["Synchronized"]]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("Synchronized", "Creating"),
        ("Ready", "Waiting"),
    ]
    assert next_status(_view({}), NOW, [])["conditions"] == []
