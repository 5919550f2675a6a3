"""ML Metadata over its gRPC API: the reads artifact resolution makes, metered.

The messages are MLMD's own, declared in ``metadata_store.proto`` beside this module (the part of
MLMD's API the operator calls, with MLMD's package, names and field numbers) and compiled at build
time by grpcio-tools into a descriptor set, ``metadata_store.binpb`` (see ``setup.py``). The
descriptors are loaded into a descriptor pool of this module's own, and the message classes are
built from them: so the operator needs neither the ``ml-metadata`` package (wheels for x86-64
CPython 3.11 only, ``protobuf<5``) nor generated modules in the process-wide pool, where MLMD's
symbols would clash with the ``ml-metadata`` package's wherever both are loaded (the local stack
and the tests run the real MLMD store). The replies become the plain records of
``reconcilers.artifacts.records``, so artifact resolution depends on no protobuf at all.

Calls are made once, with a deadline: the work queue's backoff is the retry layer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from prometheus_client import CollectorRegistry, Counter, Histogram

from controller.metrics import LabelledChildren
from reconcilers.artifacts import records
from reconcilers.artifacts.mlmd_values import python_properties
from reconcilers.artifacts.resolve import MetadataUnavailable

CLIENT_TIMEOUT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # as KFP's own MLMD client: a large run's records are big
PAGE_SIZE = 100
DESCRIPTOR_SET = "metadata_store.binpb"
SERVICE = "ml_metadata.MetadataStoreService"


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


class MlmdUnavailable(MetadataUnavailable):
    """ML Metadata could not be reached or failed; resolution is retried later."""


@cache
def _messages() -> dict[str, Any]:
    """MLMD's message classes, built from the descriptor set in a pool of their own."""
    files = descriptor_pb2.FileDescriptorSet.FromString(
        resources.files(__package__).joinpath(DESCRIPTOR_SET).read_bytes()
    )
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    names = [
        "Execution",
        "Event",
        "Artifact",
        *(f"{rpc}{kind}" for rpc in _RPCS for kind in ("Request", "Response")),
    ]
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"ml_metadata.{name}"))
        for name in names
    }


_RPCS = (
    "GetExecutions",
    "GetContextByTypeAndName",
    "GetExecutionsByContext",
    "GetEventsByExecutionIDs",
    "GetArtifactsByID",
)


def channel_credentials(
    *, tls: bool, ca_file: str = "", cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials | None:
    """TLS credentials for the channel (a CA bundle, an optional client certificate), or None."""
    if not tls:
        return None

    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca_file), private_key=read(key_file), certificate_chain=read(cert_file)
    )


class MlmdClient:
    """The ``MetadataReader`` protocol of ``reconcilers.artifacts.resolve`` over MLMD's gRPC API."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: MlmdMetrics,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = CLIENT_TIMEOUT_SECONDS,
    ) -> None:
        target = f"{host}:{port}"
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channel = (
            grpc.secure_channel(target, credentials, options=options)
            if credentials is not None
            else grpc.insecure_channel(target, options=options)
        )
        messages = _messages()
        self._messages = messages
        self._calls: dict[str, grpc.UnaryUnaryMultiCallable[Any, Any]] = {
            rpc: self._channel.unary_unary(
                f"/{SERVICE}/{rpc}",
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=messages[f"{rpc}Response"].FromString,
            )
            for rpc in _RPCS
        }
        self._requests = LabelledChildren(metrics.requests)
        self._duration = LabelledChildren(metrics.duration)
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    # -- the reads -----------------------------------------------------------------------------

    def get_context_id(self, type_name: str, context_name: str) -> int | None:
        response = self._call("GetContextByTypeAndName", type_name=type_name, context_name=context_name)
        return int(response.context.id) if response.HasField("context") else None

    def get_executions_in_context(self, type_name: str, context_name: str) -> list[records.Execution]:
        if "\\" in type_name + context_name:
            # How a backslash in a filter's string literal reaches ML Metadata's database
            # depends on its backend (the SQLite store matched no escaped one): look the
            # context up instead.
            context_id = self.get_context_id(type_name, context_name)
            if context_id is None:
                return []
            return self._executions("GetExecutionsByContext", context_id=context_id)
        # One call where looking the context up and then asking for its executions takes two: a
        # filter on the executions' context (ListOperationOptions.filter_query, in MLMD 1.14).
        query = f"contexts_a.type = {_literal(type_name)} AND contexts_a.name = {_literal(context_name)}"
        return self._executions("GetExecutions", filter_query=query)

    def _executions(self, rpc: str, *, filter_query: str = "", **fields: Any) -> list[records.Execution]:
        executions: list[records.Execution] = []
        token = ""
        while True:
            options = {
                "max_result_size": PAGE_SIZE,
                **({"filter_query": filter_query} if filter_query else {}),
                **({"next_page_token": token} if token else {}),
            }
            response = self._call(rpc, options=options, **fields)
            executions.extend(_execution(e) for e in response.executions)
            token = response.next_page_token
            if not token:
                return executions

    def get_events_by_execution_ids(self, execution_ids: Iterable[int]) -> list[records.Event]:
        response = self._call("GetEventsByExecutionIDs", execution_ids=list(execution_ids))
        return [_event(e) for e in response.events]

    def get_artifacts_by_id(self, artifact_ids: Iterable[int]) -> list[records.Artifact]:
        response = self._call("GetArtifactsByID", artifact_ids=list(artifact_ids))
        return [_artifact(a) for a in response.artifacts]

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, rpc: str, **fields: Any) -> Any:
        request = self._messages[f"{rpc}Request"](**fields)
        started = time.monotonic()
        code = "OK"
        try:
            return self._calls[rpc](request, timeout=self._timeout)
        except grpc.RpcError as error:
            # What a unary call raises is also a grpc.Call, with the status code and details.
            status: Any = error
            code = status.code().name
            raise MlmdUnavailable(rpc, code, str(status.details())) from None
        finally:
            self._requests(rpc, code).inc()
            self._duration(rpc).observe(time.monotonic() - started)


def _literal(text: str) -> str:
    """A string literal of MLMD's filter language (ZetaSQL's), its quotes escaped, so that a
    name can never change the query (names with backslashes are not put in queries)."""
    return "'" + text.replace("'", "\\'") + "'"


def _enum_name(message: Any, field: str) -> str:
    value = getattr(message, field)
    return str(message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[value].name)


def _execution(message: Any) -> records.Execution:
    strings = {
        key: str(value.string_value)
        for key, value in message.custom_properties.items()
        if value.WhichOneof("value") == "string_value"
    }
    return records.Execution(
        id=int(message.id),
        type=str(message.type),
        state=_enum_name(message, "last_known_state"),
        strings=strings,
    )


def _event(message: Any) -> records.Event:
    path = tuple(
        str(step.key) if step.WhichOneof("value") == "key" else int(step.index) for step in message.path.steps
    )
    return records.Event(
        execution_id=int(message.execution_id),
        artifact_id=int(message.artifact_id),
        type=_enum_name(message, "type"),
        path=path,
    )


def _artifact(message: Any) -> records.Artifact:
    return records.Artifact(
        id=int(message.id),
        uri=str(message.uri),
        state=_enum_name(message, "state"),
        properties=python_properties(message.custom_properties),
    )
