"""An embedded ML Metadata store (SQLite) shared by the gRPC service and the emulator's writers.

SQLite does not tolerate concurrent writers ("database is locked"), so every call,
from the gRPC service's threads and from the run engine alike, goes through one
store handle under one lock (docs/emulator.md §10.1).

The class extends MLMD's own Python client, which in ``ConnectionConfig`` mode calls
the C++ extension directly: the emulator writes with the familiar ``put_execution``
API, and the gRPC service hands serialized requests straight to the same handle.
``MetadataStore._call_method`` and ``_metadata_store`` are private to ml-metadata but
have been stable across the 1.x releases.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ml_metadata.metadata_store import metadata_store
from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as extension
from ml_metadata.proto import metadata_store_pb2

# Canonical status codes (absl / gRPC numbering) the extension returns.
UNIMPLEMENTED = 12


class EmbeddedMetadataStore(metadata_store.MetadataStore):
    def __init__(self, db_path: Path) -> None:
        config = metadata_store_pb2.ConnectionConfig(
            sqlite=metadata_store_pb2.SqliteMetadataSourceConfig(
                filename_uri=str(db_path),
                connection_mode=metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE,
            )
        )
        super().__init__(config)
        self._lock = threading.Lock()

    def _call_method(self, method_name: str, request: Any, response: Any) -> None:
        with self._lock:
            super()._call_method(method_name, request, response)

    def call_serialized(self, rpc_name: str, request: bytes) -> tuple[bytes, str, int]:
        """Runs one ``MetadataStoreService`` RPC on serialized bytes: (response, error, status code).

        The 1.17 extension lacks a few of the service's RPCs; those answer UNIMPLEMENTED
        as a real server without them would.
        """
        function = getattr(extension, rpc_name, None)
        if function is None:
            return b"", rpc_name, UNIMPLEMENTED
        with self._lock:
            response, error, code = function(self._metadata_store, request)
        return response, error.decode("utf-8", errors="replace"), code
