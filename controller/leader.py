"""Leader election on a ``coordination.k8s.io/v1`` Lease: a port of client-go ``tools/leaderelection``.

Only the leader runs reconcilers; every other instance is a warm standby (informers synced,
live and ready) that takes over when the leader's lease runs out or is released.

The algorithm (``tryAcquireOrRenew``), with client-go's defaults as controller-runtime uses
them (lease 15 s, renew deadline 10 s, retry period 2 s):

* The Lease holds ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``,
  ``renewTime`` (MicroTime) and ``leaseTransitions``. Every write is a full update conditional
  on the ``resourceVersion`` last read, so two candidates can never both succeed.
* A candidate that finds the lease held by someone else treats it as valid until
  ``leaseDurationSeconds`` after *it last saw the record change*, measured on its own
  monotonic clock. ``renewTime`` is never compared across machines, so clock skew does not
  matter; a leader that stopped renewing is taken over one lease duration after the others
  noticed.
* The leader renews every retry period; the first try is an optimistic update of the record
  it wrote last (one request), falling back to read-then-update. If it cannot renew for a
  whole renew deadline it stops leading: the callback stops the workers and the process exits
  non-zero, so it restarts cleanly as a candidate (controller-runtime's behaviour).
* On a clean shutdown the leader *releases* the lease after its workers have stopped:
  ``holderIdentity`` is cleared and the duration set to 1 s, so a standby takes over at its
  next retry instead of waiting for the lease to expire.
* Candidates retry every retry period with jitter (x[1, 2.2]) so they do not move in lockstep.

``leader_election_master_status{name=<lease name>}`` is 1 while leading, 0 otherwise.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog
from kubernetes.client.exceptions import ApiException

from controller.clock import Clock, RealClock
from controller.keys import ObjectKey
from controller.metrics import Metrics
from controller.resource import LEASES

log = structlog.get_logger("controller.leader")

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
JITTER_FACTOR = 1.2


@dataclass(frozen=True)
class LeaderElectionRecord:
    """The election state stored in the Lease (client-go ``LeaderElectionRecord``)."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    leader_transitions: int = 0


class ResourceLock(Protocol):
    """Where the record lives (client-go ``resourcelock.Interface``).

    ``update`` is conditional on the version of the last record ``get``/``create``/``update``
    saw and fails (raises) if the lock changed since.
    """

    def get(self) -> LeaderElectionRecord:
        """Returns the current record; raises an ``ApiException`` with status 404 if absent."""
        ...

    def create(self, record: LeaderElectionRecord) -> None: ...

    def update(self, record: LeaderElectionRecord) -> None: ...

    def describe(self) -> str: ...


class LeaseLock:
    """A :class:`ResourceLock` on a Lease, through ``controller.kube.Kube``.

    Calls are never retried here: the elector's retry period is the retry layer.
    """

    def __init__(self, kube: Any, namespace: str, name: str, *, timeout: float = 5.0) -> None:
        self._kube = kube
        self.namespace = namespace
        self.name = name
        self._timeout = timeout
        self._lease: dict[str, Any] | None = None

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    def get(self) -> LeaderElectionRecord:
        lease = self._kube.request(
            "GET", LEASES.path(self.namespace, self.name), timeout=self._timeout, retry=False
        )
        self._lease = lease
        return record_from_spec(lease.get("spec") or {})

    def create(self, record: LeaderElectionRecord) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec_from_record(record),
        }
        self._lease = self._kube.request(
            "POST", LEASES.path(self.namespace), body=body, timeout=self._timeout, retry=False
        )

    def update(self, record: LeaderElectionRecord) -> None:
        if self._lease is None:
            raise RuntimeError("lease not initialised: call get or create first")
        body = {**self._lease, "spec": spec_from_record(record)}
        self._lease = self._kube.request(
            "PUT", LEASES.path(self.namespace, self.name), body=body, timeout=self._timeout, retry=False
        )

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.namespace, self.name)


def record_from_spec(spec: dict[str, Any]) -> LeaderElectionRecord:
    return LeaderElectionRecord(
        holder_identity=spec.get("holderIdentity") or "",
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        leader_transitions=int(spec.get("leaseTransitions") or 0),
    )


def spec_from_record(record: LeaderElectionRecord) -> dict[str, Any]:
    return {
        "holderIdentity": record.holder_identity,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "acquireTime": record.acquire_time,
        "renewTime": record.renew_time,
        "leaseTransitions": record.leader_transitions,
    }


def micro_time(clock: Clock) -> str:
    """The API's MicroTime format: RFC 3339 with exactly six fractional digits, UTC."""
    return clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for the lock, runs ``on_started_leading`` when won, renews until told to stop.

    ``on_started_leading`` runs on its own thread (it may block, e.g. waiting for caches);
    ``on_stopped_leading`` runs when :meth:`run` returns, whether the lease was lost, released
    or never held. ``on_new_leader`` is told whenever the observed holder changes.
    """

    def __init__(
        self,
        lock: ResourceLock,
        identity: str,
        *,
        name: str = "",
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        on_started_leading: Callable[[], None] = lambda: None,
        on_stopped_leading: Callable[[], None] = lambda: None,
        on_new_leader: Callable[[str], None] = lambda identity: None,
        release_on_cancel: bool = True,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not identity:
            raise ValueError("leader election needs an identity")
        if lease_duration <= renew_deadline:
            raise ValueError("the lease duration must be greater than the renew deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError("the renew deadline must be greater than retry period x 1.2")
        self._lock = lock
        self.identity = identity
        self.name = name or lock.describe()
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._on_started_leading = on_started_leading
        self._on_stopped_leading = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._release_on_cancel = release_on_cancel
        self._status = metrics.leader_election_master_status.labels(self.name) if metrics else None
        self._clock = clock or RealClock()
        self._rng = rng or random.Random()
        self._state = threading.Lock()
        self._observed: LeaderElectionRecord | None = None
        self._observed_time = 0.0
        self._reported_leader = ""
        self._stop = threading.Event()
        self._release_on_stop = True
        self._leading = threading.Event()
        if self._status is not None:
            self._status.set(0)

    # ---- state ----------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Whether the last record this instance observed names it as holder."""
        with self._state:
            return self._observed is not None and self._observed.holder_identity == self.identity

    @property
    def leading(self) -> bool:
        """True from winning the election until leadership ends (lost or released)."""
        return self._leading.is_set()

    def get_leader(self) -> str:
        with self._state:
            return self._observed.holder_identity if self._observed else ""

    def _set_observed(self, record: LeaderElectionRecord) -> None:
        with self._state:
            if record != self._observed:
                self._observed = record
                self._observed_time = self._clock.monotonic()

    def _lease_valid(self, now: float) -> bool:
        with self._state:
            if self._observed is None:
                return False
            return self._observed_time + self._observed.lease_duration_seconds > now

    # ---- the loop -------------------------------------------------------------------------

    def stop(self, release: bool = True) -> None:
        """Asks :meth:`run` to stop campaigning or renewing.

        A leader releases the lease on the way out if ``release`` (and ``release_on_cancel``)
        is true. Pass ``release=False`` when work may still be running, so that the lease
        expires normally instead of handing over while this instance might still write.
        """
        self._release_on_stop = release
        self._stop.set()

    def run(self) -> None:
        """Acquires, leads, renews; returns when the lease is lost or :meth:`stop` is called."""
        try:
            if not self._acquire():
                return
            self._leading.set()
            if self._status is not None:
                self._status.set(1)
            threading.Thread(target=self._on_started_leading, name="leader-started", daemon=True).start()
            self._renew()
        finally:
            self._leading.clear()
            if self._status is not None:
                self._status.set(0)
            self._on_stopped_leading()

    def _acquire(self) -> bool:
        log.info("attempting to acquire leader lease", lease=self._lock.describe(), identity=self.identity)
        while not self._stop.is_set():
            acquired = self.try_acquire_or_renew()
            self._maybe_report_transition()
            if acquired:
                log.info("successfully acquired lease", lease=self._lock.describe(), identity=self.identity)
                return True
            self._stop.wait(self._retry_period * (1.0 + self._rng.random() * JITTER_FACTOR))
        return False

    def _renew(self) -> None:
        while not self._stop.is_set():
            deadline = self._clock.monotonic() + self._renew_deadline
            renewed = False
            while not self._stop.is_set():
                renewed = self.try_acquire_or_renew()
                self._maybe_report_transition()
                if renewed or self._clock.monotonic() + self._retry_period > deadline:
                    break
                self._stop.wait(self._retry_period)
            if self._stop.is_set():
                break
            if not renewed:
                log.error("failed to renew lease", lease=self._lock.describe(), identity=self.identity)
                return
            self._stop.wait(self._retry_period)
        if self._release_on_cancel and self._release_on_stop:
            self.release()

    # ---- one step -------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; returns whether this instance holds it."""
        now_stamp = micro_time(self._clock)
        record = LeaderElectionRecord(
            holder_identity=self.identity,
            lease_duration_seconds=round(self._lease_duration),
            acquire_time=now_stamp,
            renew_time=now_stamp,
        )

        # 1. Fast path: the leader updates the record it wrote last, without reading first.
        if self.is_leader() and self._lease_valid(self._clock.monotonic()):
            with self._state:
                observed = self._observed
            assert observed is not None
            renewed = replace(
                record, acquire_time=observed.acquire_time, leader_transitions=observed.leader_transitions
            )
            try:
                self._lock.update(renewed)
                self._set_observed(renewed)
                return True
            except Exception as err:
                log.info("optimistic lease update failed, falling back", error=_describe(err))

        # 2. Read (or create) the record.
        try:
            current = self._lock.get()
        except ApiException as err:
            if err.status != 404:
                log.info("error retrieving lease", lease=self._lock.describe(), error=_describe(err))
                return False
            try:
                self._lock.create(record)
            except Exception as create_err:
                log.info("error creating lease", lease=self._lock.describe(), error=_describe(create_err))
                return False
            self._set_observed(record)
            return True
        except Exception as err:
            log.info("error retrieving lease", lease=self._lock.describe(), error=_describe(err))
            return False

        # 3. Someone else holds a valid lease: wait.
        self._set_observed(current)
        if current.holder_identity and self._lease_valid(self._clock.monotonic()) and not self.is_leader():
            return False

        # 4. Take it (or keep it): a conditional update.
        if self.is_leader():
            record = replace(
                record, acquire_time=current.acquire_time, leader_transitions=current.leader_transitions
            )
        else:
            record = replace(record, leader_transitions=current.leader_transitions + 1)
        try:
            self._lock.update(record)
        except Exception as err:
            log.info("failed to update lease", lease=self._lock.describe(), error=_describe(err))
            return False
        self._set_observed(record)
        return True

    def release(self) -> bool:
        """Gives the lease up if held: clears the holder so a standby can take over at once."""
        try:
            current = self._lock.get()
        except Exception as err:
            log.error("failed to get lease before releasing it", error=_describe(err))
            return False
        self._set_observed(current)
        if not self.is_leader():
            return True
        now_stamp = micro_time(self._clock)
        released = LeaderElectionRecord(
            holder_identity="",
            lease_duration_seconds=1,
            acquire_time=now_stamp,
            renew_time=now_stamp,
            leader_transitions=current.leader_transitions,
        )
        try:
            self._lock.update(released)
        except Exception as err:
            log.error("failed to release lease", error=_describe(err))
            return False
        self._set_observed(released)
        log.info("released leader lease", lease=self._lock.describe(), identity=self.identity)
        return True

    def _maybe_report_transition(self) -> None:
        leader = self.get_leader()
        if leader and leader != self._reported_leader:
            self._reported_leader = leader
            if leader != self.identity:
                log.info("new leader elected", leader=leader)
            self._on_new_leader(leader)


def _describe(err: BaseException) -> str:
    if isinstance(err, ApiException):
        return f"{err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"
