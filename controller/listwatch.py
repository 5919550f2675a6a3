"""The informers' lister-watcher over :class:`controller.kube.Kube`: lists and watches by path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.kube import Kube
from controller.resource import Resource
from controller.transform import CacheDecoder
from controller.watchstream import KubeWatchStream


class KubeListerWatcher:
    """The reflector's :class:`~controller.reflector.ListerWatcher` over :class:`Kube`.

    Calls are made once (``retry=False``): the reflector's backoff is their retry layer. With a
    ``decoder`` the objects listed and watched come already in the cache's form.
    """

    def __init__(
        self, kube: Kube, resource: Resource, namespace: str | None, decoder: CacheDecoder | None = None
    ) -> None:
        self._kube = kube
        self._resource = resource
        self._namespace = namespace
        self._decoder = decoder

    def list(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int,
        continue_token: str | None,
        field_selector: str | None = None,
    ) -> Mapping[str, Any]:
        return self._kube.list_page(
            self._resource,
            self._namespace,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            limit=limit,
            continue_token=continue_token,
            field_selector=field_selector,
            retry=False,
            decode=self._decoder.page if self._decoder else None,
        )

    def watch(self, *, resource_version: str, timeout_seconds: int) -> KubeWatchStream:
        return self._kube.watch(
            self._resource,
            self._namespace,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            decode=self._decoder.event if self._decoder else None,
        )
