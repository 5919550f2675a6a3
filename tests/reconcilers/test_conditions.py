"""Conditions: transition times, and messages that always fit the API server's limit."""

from __future__ import annotations

from datetime import UTC, datetime

from reconcilers.conditions import MAX_MESSAGE_LENGTH, Condition, apply_conditions

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
