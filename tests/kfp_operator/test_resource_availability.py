"""The operator starts without the Pipeline and Experiment controllers, and says why, when the API
server does not serve their CRDs or it may not list and watch them; it does not guess from an API
server that does not answer."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3
from kubernetes.client import ApiException

from kfp_operator import settings
from kfp_operator.wiring import _why_resources_unusable


class FakeKube:
    def __init__(
        self, served: list[str], denied: set[tuple[str, str, str]] = frozenset(), down: bool = False
    ):
        self.served = served
        self.denied = denied
        self.down = down
        self.reviews: list[dict[str, Any]] = []

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> dict[str, Any]:
        if self.down:
            raise urllib3.exceptions.MaxRetryError(None, path)
        if method == "GET":
            if not self.served:
                raise ApiException(status=404)
            return {"resources": [{"name": name} for name in self.served]}
        attributes = body["spec"]["resourceAttributes"]
        self.reviews.append(attributes)
        key = (attributes["resource"], attributes["verb"], attributes["namespace"])
        return {"status": {"allowed": key not in self.denied}}


ALL = ["runs", "runconfigurations", "pipelines", "experiments"]


def config(**values: Any) -> settings.Config:
    return settings.load(values)


def test_usable_when_served_and_allowed_in_every_watched_namespace() -> None:
    kube = FakeKube(ALL)
    assert _why_resources_unusable(kube, config(watchNamespaces=["a", "b"])) is None  # type: ignore[arg-type]
    assert {(r["resource"], r["verb"], r["namespace"]) for r in kube.reviews} == {
        (resource, verb, namespace)
        for resource in ("pipelines", "experiments")
        for verb in ("list", "watch")
        for namespace in ("a", "b")
    }


@pytest.mark.parametrize(
    ("kube", "says"),
    [
        (FakeKube(["runs", "runconfigurations"]), "does not serve pipelines and experiments"),
        (FakeKube(["runs", "runconfigurations", "pipelines"]), "does not serve experiments"),
        (FakeKube(ALL, denied={("experiments", "watch", "")}), "may not watch experiments"),
    ],
)
def test_unusable_says_why(kube: FakeKube, says: str) -> None:
    reason = _why_resources_unusable(kube, config())  # type: ignore[arg-type]
    assert reason is not None and says in reason


def test_an_api_server_that_does_not_answer_is_not_a_reason() -> None:
    assert _why_resources_unusable(FakeKube(ALL, down=True), config()) is None  # type: ignore[arg-type]
