"""The garbage collector's settings: raised young threshold, and one freeze after the caches sync."""

from __future__ import annotations

import gc
import threading

import pytest

from controller import gcpolicy
from controller.gcpolicy import FreezeAfterSync, raise_thresholds
from kfp_devstack.waiting import wait_until


class FakeInformer:
    def __init__(self) -> None:
        self.synced = threading.Event()
        self.waits = 0

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return self.synced.wait(timeout)


class FakeFreeze:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return 123


@pytest.fixture(autouse=True)
def short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcpolicy, "SYNC_POLL_SECONDS", 0.01)


def test_the_heap_is_frozen_once_and_only_after_every_informer_has_synced() -> None:
    first, second = FakeInformer(), FakeInformer()
    freeze = FakeFreeze()
    freezer = FreezeAfterSync([first, second], freeze=freeze)
    first.synced.set()
    freezer.start()
    try:
        wait_until(
            lambda: second.waits >= 3, timeout=10, message="the freezer to wait for the second informer"
        )
        assert freeze.calls == 0 and not freezer.frozen.is_set(), "frozen before every informer synced"

        second.synced.set()
        wait_until(freezer.frozen.is_set, timeout=10, message="the freeze")
        assert freeze.calls == 1
    finally:
        freezer.stop()
    assert freeze.calls == 1, "one freeze only"


def test_a_freezer_stopped_before_the_caches_synced_never_freezes() -> None:
    informer = FakeInformer()
    freeze = FakeFreeze()
    freezer = FreezeAfterSync([informer], freeze=freeze)
    freezer.start()
    wait_until(lambda: informer.waits >= 1, timeout=10, message="the freezer to wait")
    freezer.stop()
    assert not [t for t in threading.enumerate() if t.name == "gc-freeze"], "the freezer's thread ended"
    informer.synced.set()
    assert freeze.calls == 0 and not freezer.frozen.is_set()


def test_raising_thresholds_changes_the_young_generation_only() -> None:
    before = gc.get_threshold()
    try:
        raise_thresholds(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.set_threshold(*before)
