"""Looking KFP pipelines, versions and experiments up by name, with a short-lived cache.

A burst of Runs of the same pipeline would otherwise cost three KFP calls per
Run for the same answers. Answers (including "not found") are kept for a few
seconds: a pipeline version uploaded a moment ago is seen at most that much
later, which the slow re-check of waiting Runs absorbs anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cachetools import TTLCache

from kfp_operator.clients.kfp import KfpClient
from reconcilers.run.resolve import PipelineVersion

T = TypeVar("T")

DEFAULT_TTL_SECONDS = 10.0
MAX_ENTRIES = 4096


def _equals(key: str, value: str) -> dict[str, Any]:
    return {"predicates": [{"key": key, "operation": "EQUALS", "string_value": value}]}


class CachedKfpCatalog:
    """Implements the resolver's ``KfpCatalog`` over the KFP API."""

    def __init__(self, kfp: KfpClient, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self._kfp = kfp
        self._cache: TTLCache[Hashable, object] = TTLCache(maxsize=MAX_ENTRIES, ttl=ttl_seconds)
        self._lock = threading.Lock()

    def pipeline_id(self, name: str, namespace: str) -> str | None:
        def lookup() -> str | None:
            pipeline = self._kfp.get_pipeline_by_name(name, namespace)
            if pipeline is None and self._kfp.multi_user and namespace:
                pipeline = self._kfp.get_pipeline_by_name(name, "")  # a shared pipeline
            return pipeline["pipeline_id"] if pipeline else None

        return self._cached(("pipeline", name, namespace), lookup)

    def pipeline_version(self, pipeline_id: str, version_name: str | None) -> PipelineVersion | None:
        def lookup() -> PipelineVersion | None:
            if version_name is None:
                # Latest by creation time; the server's own tie-break within a second is arbitrary.
                versions = self._kfp.list_pipeline_versions(
                    pipeline_id, sort_by="created_at desc", page_size=1
                )
            else:
                versions = self._kfp.list_pipeline_versions(pipeline_id, filter=_equals("name", version_name))
            return _version(pipeline_id, versions[0]) if versions else None

        return self._cached(("version", pipeline_id, version_name), lookup)

    def pipeline_version_by_id(self, pipeline_id: str, version_id: str) -> PipelineVersion | None:
        def lookup() -> PipelineVersion | None:
            version = self._kfp.get_pipeline_version(pipeline_id, version_id)
            return _version(pipeline_id, version) if version else None

        return self._cached(("version-id", pipeline_id, version_id), lookup)

    def experiment_name(self, experiment_id: str) -> str | None:
        def lookup() -> str | None:
            experiment = self._kfp.get_experiment(experiment_id)
            return str(experiment.get("display_name", "")) or None if experiment else None

        return self._cached(("experiment-id", experiment_id), lookup)

    def experiment_id(self, display_name: str, namespace: str) -> str | None:
        def lookup() -> str | None:
            experiments = self._kfp.list_experiments(
                filter=_equals("display_name", display_name), namespace=namespace
            )
            return experiments[0]["experiment_id"] if experiments else None

        return self._cached(("experiment", display_name, namespace), lookup)

    def _cached(self, key: Hashable, lookup: Callable[[], T]) -> T:
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[return-value]
        value = lookup()  # outside the lock: a slow KFP call must not serialise all workers
        with self._lock:
            self._cache[key] = value
        return value


def _version(pipeline_id: str, version: dict[str, Any]) -> PipelineVersion:
    return PipelineVersion(
        pipeline_id=pipeline_id,
        version_id=version["pipeline_version_id"],
        name=version.get("name") or version.get("display_name", ""),
        pipeline_spec=version.get("pipeline_spec"),
    )
