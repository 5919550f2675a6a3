"""ML Metadata over its gRPC API, metered.

``ml_metadata.MetadataStore`` is the official client; this wraps the few reads
artifact resolution makes so each is counted and timed by RPC and outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlpb
from prometheus_client import CollectorRegistry, Counter, Histogram

T = TypeVar("T")

CLIENT_TIMEOUT_SECONDS = 30
MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # as KFP's own MLMD client: a large run's records are big


class MlmdMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "kfp_operator_mlmd_requests_total",
            "ML Metadata requests by RPC and outcome (OK or the gRPC status name).",
            ["rpc", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "kfp_operator_mlmd_request_duration_seconds",
            "ML Metadata request latency by RPC.",
            ["rpc"],
            registry=registry,
        )


class MlmdUnavailable(Exception):
    """ML Metadata could not be reached or failed; resolution is retried later."""


class MeteredMetadataStore:
    """The ``MetadataReader`` protocol of ``reconcilers.artifacts.resolve`` over a gRPC MetadataStore."""

    def __init__(self, host: str, port: int, metrics: MlmdMetrics) -> None:
        config = mlpb.MetadataStoreClientConfig(
            host=host, port=port, client_timeout_sec=CLIENT_TIMEOUT_SECONDS
        )
        config.channel_arguments.max_receive_message_length = MAX_MESSAGE_BYTES
        self._store = metadata_store.MetadataStore(config)
        self._metrics = metrics

    def get_context_by_type_and_name(self, type_name: str, context_name: str) -> mlpb.Context | None:
        return self._call(
            "GetContextByTypeAndName",
            lambda: self._store.get_context_by_type_and_name(type_name, context_name),
        )

    def get_executions_by_context(self, context_id: int) -> list[mlpb.Execution]:
        return self._call("GetExecutionsByContext", lambda: self._store.get_executions_by_context(context_id))

    def get_events_by_execution_ids(self, execution_ids: Iterable[int]) -> list[mlpb.Event]:
        ids = list(execution_ids)
        return self._call("GetEventsByExecutionIDs", lambda: self._store.get_events_by_execution_ids(ids))

    def get_artifacts_by_id(self, artifact_ids: Iterable[int]) -> list[mlpb.Artifact]:
        ids = list(artifact_ids)
        return self._call("GetArtifactsByID", lambda: self._store.get_artifacts_by_id(ids))

    def _call(self, rpc: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        code = "OK"
        try:
            return call()
        except mlmd_errors.StatusError as error:
            code = type(error).__name__.removesuffix("Error").upper()
            raise MlmdUnavailable(f"ML Metadata {rpc}: {error}") from None
        finally:
            self._metrics.requests.labels(rpc, code).inc()
            self._metrics.duration.labels(rpc).observe(time.monotonic() - started)
