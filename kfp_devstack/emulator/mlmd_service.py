"""The standard ``ml_metadata.MetadataStoreService`` over gRPC, backed by the embedded store.

Every RPC of the service is registered; requests and responses stay serialized (no
decode/re-encode in Python) and go straight to the embedded store, so
``MetadataStore(MetadataStoreClientConfig(host=..., port=...))`` works unchanged.
Messages may be up to 100 MB, as KFP's own client allows.

The service can be switched "down": every call then fails with UNAVAILABLE, as a
client sees an unreachable server, until it is switched back up. The emulator's own
writes do not go through gRPC and are not affected.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import Any

import grpc
from ml_metadata.proto import metadata_store_service_pb2

from kfp_devstack.emulator.call_counter import CallCounter
from kfp_devstack.emulator.mlmd_store import EmbeddedMetadataStore

LOG = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024
_STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}
_SERVICE = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]


class MetadataGrpcService:
    def __init__(
        self,
        store: EmbeddedMetadataStore,
        calls: CallCounter,
        host: str,
        port: int,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self._store = store
        self._calls = calls
        self._available = threading.Event()
        self._available.set()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="mlmd-grpc"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        handlers = {method.name: self._handler(method.name) for method in _SERVICE.methods}
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),)
        )
        self.host = host
        address = f"{host}:{port}"
        self.tls = credentials is not None
        self.port = (
            self._server.add_secure_port(address, credentials)
            if credentials is not None
            else self._server.add_insecure_port(address)
        )
        if self.port == 0:
            raise OSError(f"cannot listen for MLMD gRPC on {host}:{port}")

    def start(self) -> None:
        self._server.start()
        LOG.info("MLMD gRPC service listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        self._server.stop(grace=0.1).wait()

    @property
    def available(self) -> bool:
        return self._available.is_set()

    def set_available(self, available: bool) -> None:
        if available:
            self._available.set()
        else:
            self._available.clear()

    def _handler(self, rpc_name: str) -> grpc.RpcMethodHandler:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            self._calls.record(rpc_name)
            if not self._available.is_set():
                context.abort(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
            response, error, code = self._store.call_serialized(rpc_name, request)
            if code != 0:
                context.abort(_STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN), error)
            return response

        return _unary_bytes_handler(handle)


def _unary_bytes_handler(handle: Any) -> grpc.RpcMethodHandler:
    # No (de)serializers: the handler receives and returns the raw protobuf bytes.
    return grpc.unary_unary_rpc_method_handler(handle)
