"""Skipping reconciles of versions our own writes superseded, and forgetting them in time."""

from __future__ import annotations

from controller.clock import FakeClock
from controller.keys import ObjectKey
from reconcilers.expectations import EXPIRY_SECONDS, ActedOnVersions


def version(rv: str) -> dict[str, object]:
    return {"metadata": {"resourceVersion": rv}}


def test_a_superseded_version_is_stale_until_a_newer_one_arrives_or_it_expires() -> None:
    clock = FakeClock()
    acted = ActedOnVersions(clock)
    key = ObjectKey("ns", "a")
    acted.acted_on(key, version("1"), version("2"))
    assert acted.is_stale(key, version("1")) and acted.is_stale(key, version("2"))
    assert not acted.is_stale(key, version("3")), "our write's own version is news"
    assert not acted.is_stale(key, version("1")), "and it ends the entry"

    acted.acted_on(key, version("3"))
    clock.step(EXPIRY_SECONDS + 1)
    assert not acted.is_stale(key, version("3")), "a write that never showed up silences no longer"


def test_entries_of_objects_never_reconciled_again_are_dropped_once_expired() -> None:
    clock = FakeClock()
    acted = ActedOnVersions(clock)
    for i in range(100):
        acted.acted_on(ObjectKey("ns", f"done-{i}"), version("1"))
    assert len(acted) == 100
    clock.step(EXPIRY_SECONDS + 1)
    for i in range(30):
        acted.acted_on(ObjectKey("ns", f"new-{i}"), version("1"))
    assert len(acted) == 30, "each write drops expired entries, several at a time"

    acted.acted_on(ObjectKey("ns", "new-0"), version("2"))  # renewed: moves to the end
    clock.step(EXPIRY_SECONDS - 1)
    acted.acted_on(ObjectKey("ns", "late"), version("1"))
    assert acted.is_stale(ObjectKey("ns", "new-0"), version("2"))
