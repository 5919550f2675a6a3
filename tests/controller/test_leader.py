"""Leader election steps (tryAcquireOrRenew, release) against an in-memory lock and a fake clock."""

from __future__ import annotations

import threading

import pytest
from kubernetes.client.exceptions import ApiException

from controller.clock import FakeClock
from controller.leader import LeaderElectionRecord, LeaderElector
from controller.metrics import Metrics
from kfp_devstack.waiting import wait_until


class Server:
    """One Lease as the API server keeps it: a record and a resourceVersion."""

    def __init__(self) -> None:
        self.record: LeaderElectionRecord | None = None
        self.version = 0
        self.writes = 0


class MemoryLock:
    """A ResourceLock with the API's optimistic concurrency: updates carry the version last seen."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.seen: int | None = None
        self.fail_next: Exception | None = None

    def describe(self) -> str:
        return "ns/lease"

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err

    def get(self) -> LeaderElectionRecord:
        self._maybe_fail()
        if self.server.record is None:
            raise ApiException(status=404)
        self.seen = self.server.version
        return self.server.record

    def create(self, record: LeaderElectionRecord) -> None:
        self._maybe_fail()
        if self.server.record is not None:
            raise ApiException(status=409)
        self._write(record)

    def update(self, record: LeaderElectionRecord) -> None:
        self._maybe_fail()
        if self.seen != self.server.version:
            raise ApiException(status=409, reason="Conflict")
        self._write(record)

    def _write(self, record: LeaderElectionRecord) -> None:
        self.server.record = record
        self.server.version += 1
        self.server.writes += 1
        self.seen = self.server.version


def elector(server: Server, identity: str, clock: FakeClock, metrics: Metrics | None = None) -> LeaderElector:
    return LeaderElector(MemoryLock(server), identity, name="lease", clock=clock, metrics=metrics)


def test_first_candidate_creates_the_lease_and_others_wait_while_it_is_valid() -> None:
    server, clock = Server(), FakeClock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    assert a.try_acquire_or_renew()
    assert server.record is not None and server.record.holder_identity == "a"
    assert server.record.lease_duration_seconds == 15 and server.record.leader_transitions == 0
    assert server.record.acquire_time == server.record.renew_time
    assert server.record.renew_time.endswith("Z") and len(server.record.renew_time.split(".")[1]) == 7
    assert not b.try_acquire_or_renew()
    assert b.get_leader() == "a"
    clock.step(14)
    assert not b.try_acquire_or_renew(), "the lease is valid for 15 s after b first saw it"


def test_a_standby_takes_over_a_lease_that_was_not_renewed() -> None:
    server, clock = Server(), FakeClock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    clock.step(16)
    assert b.try_acquire_or_renew()
    assert server.record is not None
    assert server.record.holder_identity == "b" and server.record.leader_transitions == 1
    assert not a.try_acquire_or_renew(), "the old leader's optimistic update conflicts and it sees b"
    assert not a.is_leader()


def test_renewals_keep_the_lease_and_its_acquire_time() -> None:
    server, clock = Server(), FakeClock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    a.try_acquire_or_renew()
    acquired = server.record.acquire_time if server.record else None
    for _ in range(10):
        clock.step(2)
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew(), "each renewal is a change b observes: the lease stays valid"
    assert server.record is not None
    assert server.record.acquire_time == acquired and server.record.renew_time != acquired
    assert server.record.leader_transitions == 0


def test_the_leader_renews_with_a_single_write_when_nothing_changed() -> None:
    server, clock = Server(), FakeClock()
    a = elector(server, "a", clock)
    a.try_acquire_or_renew()
    lock = a._lock
    assert isinstance(lock, MemoryLock)
    calls: list[str] = []
    original_get = lock.get

    def counting_get() -> LeaderElectionRecord:
        calls.append("get")
        return original_get()

    lock.get = counting_get  # type: ignore[method-assign]
    clock.step(2)
    assert a.try_acquire_or_renew()
    assert calls == [], "the fast path updates without reading first"


def test_release_clears_the_holder_so_a_standby_acquires_at_once() -> None:
    server, clock = Server(), FakeClock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    assert a.release()
    assert server.record is not None
    assert server.record.holder_identity == "" and server.record.lease_duration_seconds == 1
    assert b.try_acquire_or_renew(), "no need to wait for the lease to expire"
    assert server.record.holder_identity == "b" and server.record.leader_transitions == 1


def test_release_by_a_non_leader_changes_nothing() -> None:
    server, clock = Server(), FakeClock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    a.try_acquire_or_renew()
    writes = server.writes
    assert b.release()
    assert server.writes == writes and server.record is not None and server.record.holder_identity == "a"


def test_api_errors_mean_not_acquired() -> None:
    server, clock = Server(), FakeClock()
    a = elector(server, "a", clock)
    lock = a._lock
    assert isinstance(lock, MemoryLock)
    lock.fail_next = ApiException(status=500)
    assert not a.try_acquire_or_renew()
    lock.fail_next = ConnectionRefusedError()
    assert not a.try_acquire_or_renew()
    assert a.try_acquire_or_renew()


@pytest.mark.timeout(20)
def test_run_leads_reports_status_and_releases_on_stop() -> None:
    server, metrics = Server(), Metrics(process_collector=False)
    started = threading.Event()
    stopped = threading.Event()
    a = LeaderElector(
        MemoryLock(server),
        "a",
        name="lease",
        metrics=metrics,
        retry_period=0.02,
        renew_deadline=0.1,
        lease_duration=1,
        on_started_leading=started.set,
        on_stopped_leading=stopped.set,
    )
    status = lambda: metrics.registry.get_sample_value("leader_election_master_status", {"name": "lease"})  # noqa: E731
    assert status() == 0
    runner = threading.Thread(target=a.run)
    runner.start()
    assert started.wait(10)
    assert a.leading and status() == 1
    wait_until(lambda: server.writes >= 3, timeout=10, message="renewals")
    a.stop()
    runner.join(10)
    assert stopped.is_set() and not a.leading and status() == 0
    assert server.record is not None and server.record.holder_identity == "", "released on stop"


def test_timings_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="lease duration"):
        LeaderElector(MemoryLock(Server()), "a", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="renew deadline"):
        LeaderElector(MemoryLock(Server()), "a", renew_deadline=2, retry_period=2)
