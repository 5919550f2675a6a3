"""Fixtures for the controller runtime's tests against the real API server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.informer import Informer
from controller.kube import Kube
from controller.listwatch import KubeListerWatcher
from controller.metrics import Metrics
from controller.resource import Resource


@pytest.fixture
def kube(control_plane: Any) -> Iterator[Kube]:
    """An operator client on the admin identity, without client-side throttling."""
    client = Kube(control_plane.admin_configuration(), Metrics(process_collector=False), qps=0, burst=0)
    yield client
    client.close()


@pytest.fixture
def make_informer(kube: Kube) -> Iterator[Callable[..., Informer]]:
    """Returns ``make(resource, namespaces=(), lister_watcher=None, **kwargs)``: an informer on the
    test API server (not started yet, so handlers can be added first), stopped after the test."""
    started: list[Informer] = []

    def make(
        resource: Resource, namespaces: tuple[str, ...] = (), lister_watcher: Any = None, **kwargs: Any
    ) -> Informer:
        def factory(namespace: str | None) -> Any:
            return lister_watcher or KubeListerWatcher(kube, resource, namespace)

        informer = Informer(resource, factory, namespaces=namespaces, **kwargs)
        started.append(informer)
        return informer

    yield make
    for informer in started:
        informer.stop()
