"""What the reconcilers need from the world, as Protocols: the only way they do I/O.

The composition root (``kfp_operator``) passes concrete clients that satisfy these; unit tests
pass recording fakes (``tests/reconcilers/fakes.py``). Two more are declared where they are
used: ``reconcilers.run.resolve.KfpCatalog`` (KFP lookups by name) and
``reconcilers.artifacts.resolve.MetadataReader`` (ML Metadata reads).

Errors the reconcilers act on are declared here too, so that they can tell them apart without
knowing the clients: :class:`KfpError` (with the HTTP status) and :class:`DeliveryFailed`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.keys import ObjectKey
from controller.resource import Resource

Obj = dict[str, Any]


class KubeClient(Protocol):
    """Writes to, and uncached reads from, the Kubernetes API (``controller.kube.Kube``)."""

    def get_or_none(self, resource: Resource, key: ObjectKey) -> Obj | None: ...

    def create_if_absent(self, resource: Resource, obj: Mapping[str, Any]) -> Obj | None:
        """Creates ``obj``, or returns None when an object of its name exists already."""
        ...

    def patch_status(
        self,
        resource: Resource,
        key: ObjectKey,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> Obj: ...

    def add_finalizer(self, resource: Resource, obj: Mapping[str, Any], finalizer: str) -> Obj | None: ...

    def remove_finalizer(self, resource: Resource, obj: Mapping[str, Any], finalizer: str) -> Obj | None: ...

    def delete(
        self,
        resource: Resource,
        key: ObjectKey,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> bool: ...


class EventRecorder(Protocol):
    """Records Kubernetes Events about objects (``controller.events.EventRecorder``)."""

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None: ...


class KfpError(Exception):
    """A KFP call failed. ``status`` is the HTTP status, or None when there was no response; then
    ``failure`` says what kind of failure in a few words that are the same each time (``cannot
    connect``), where ``message`` has the details."""

    def __init__(
        self,
        operation: str,
        status: int | None,
        message: str,
        retry_after: float | None = None,
        *,
        failure: str = "",
    ) -> None:
        super().__init__(f"KFP {operation}: {message}")
        self.operation = operation
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.failure = failure

    @property
    def is_transient(self) -> bool:
        """A failure that may go away by itself: no response, 429, or a server error other than 501."""
        return self.status is None or self.status == 429 or (self.status >= 500 and self.status != 501)

    @property
    def is_refusal(self) -> bool:
        """KFP refused what the request holds (400, 413, 422): sending it again cannot help. The
        other 4xx are about the caller's credentials (401) or permissions (403), the endpoint
        (404, 405) or the moment (409, 429)."""
        return self.status in (400, 413, 422)


class KfpRuns(Protocol):
    """KFP's run API (``kfp_operator.clients.kfp.KfpClient``); every call raises :class:`KfpError`."""

    @property
    def multi_user(self) -> bool: ...

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run, or None when KFP does not know it (404)."""
        ...

    def terminate_run(self, run_id: str) -> None: ...

    def list_runs(
        self, *, filter: Mapping[str, Any], sort_by: str = "", namespace: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Every matching run, following page tokens."""
        ...

    def list_run_pages(
        self,
        *,
        filter: Mapping[str, Any],
        sort_by: str = "",
        namespace: str = "",
        first_page_size: int | None = None,
    ) -> Iterator[RunsPage]:
        """The matching runs a page (one call) at a time, the next page asked for only when the
        caller goes on. A run may hold only ``run_id``, ``state``, ``created_at`` and
        ``finished_at``: what the bulk poll reads. The first page holds at most
        ``first_page_size`` runs (None: as many as the server gives), the others as many as the
        server gives."""
        ...


@dataclass(frozen=True)
class RunsPage:
    """One page of a KFP run listing, with the server's count of every run the filter matches."""

    runs: Sequence[dict[str, Any]]
    total_size: int | None


class DeliveryFailed(Exception):
    """A sink did not acknowledge an event."""


class Sink(Protocol):
    """Where run-completion events go (``kfp_operator.clients.sinks``)."""

    @property
    def name(self) -> str:
        """How status, metrics and logs refer to the sink."""
        ...

    def publish(self, event: Mapping[str, Any]) -> None:
        """Delivers the event or raises :class:`DeliveryFailed`."""
        ...
