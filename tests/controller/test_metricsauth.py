"""The protected metrics endpoint against the real API server: TokenReview, SubjectAccessReview, cache.

A scraper's ServiceAccount token is allowed when a ClusterRole granting ``get`` on the
non-resource URL ``/metrics`` is bound to it (the chart's ``metrics-reader``), refused with 403
otherwise, and a request without a token, or with one the API server does not know, gets 401.
"""

from __future__ import annotations

import ssl
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from controller.clock import FakeClock
from controller.kube import Kube
from controller.manager import Manager
from controller.metrics import Metrics, MetricsServer
from controller.metricsauth import (
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    MetricsAuthorizer,
    ReviewCache,
    bearer_token,
)
from controller.servingcert import SelfSigned, generate_self_signed
from kfp_devstack.waiting import wait_until
from kfp_operator import settings as cfg

Mint = Callable[..., str]


class CountingClient:
    """The operator's client, counting the reviews it is asked to make."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.calls: list[str] = []
        self.failing = False

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append(path)
        if self.failing:
            raise ConnectionRefusedError("the API server is away")
        return self.kube.request(method, path, **kwargs)

    def count(self, path: str) -> int:
        return self.calls.count(path)


class Endpoint:
    """A metrics server over HTTPS behind a :class:`MetricsAuthorizer` on the test API server."""

    def __init__(self, kube: Kube) -> None:
        self.client = CountingClient(kube)
        self.clock = FakeClock()
        self.tls = SelfSigned(["localhost", "127.0.0.1"])
        metrics = Metrics(process_collector=False)
        metrics.init_controller("sample", 1)
        self.server = MetricsServer(
            "127.0.0.1:0",
            metrics.registry,
            tls=self.tls,
            authorizer=MetricsAuthorizer(self.client, clock=self.clock),
        )
        self.server.start()
        self._verifying = ssl.create_default_context(cadata=self.tls.ca_pem.decode())

    def get(self, token: str | None = None, path: str = "/metrics") -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        request = urllib.request.Request(f"https://127.0.0.1:{self.server.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, context=self._verifying, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


@pytest.fixture
def endpoint(kube: Kube) -> Iterator[Endpoint]:
    served = Endpoint(kube)
    yield served
    served.server.stop()


@pytest.fixture
def grant(api_client: kubernetes.client.ApiClient) -> Iterator[Callable[[str, str], None]]:
    """``grant(namespace, service_account)``: binds a ClusterRole allowing ``get`` on ``/metrics``,
    as the chart's metrics-reader role does."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    name = f"metrics-reader-{uuid.uuid4().hex[:8]}"
    rbac.create_cluster_role(
        {"metadata": {"name": name}, "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}
    )
    bindings: list[str] = []

    def bind(namespace: str, service_account: str) -> None:
        binding = f"{name}-{len(bindings)}"
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
            }
        )
        bindings.append(binding)
        # The API server's authorizer learns of the binding through its own watch: wait for it.
        wait_until(
            lambda: allowed(api_client, f"system:serviceaccount:{namespace}:{service_account}"),
            timeout=10,
            message="the metrics-reader binding to take effect",
        )

    yield bind
    for binding in bindings:
        rbac.delete_cluster_role_binding(binding)
    rbac.delete_cluster_role(name)


def allowed(api_client: kubernetes.client.ApiClient, user: str) -> bool:
    review = kubernetes.client.AuthorizationV1Api(api_client).create_subject_access_review(
        {"spec": {"user": user, "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}
    )
    return bool(review.status.allowed)


# ---- against the API server ------------------------------------------------------------------


def test_a_token_allowed_to_get_metrics_is_served(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    grant(namespace, "prometheus")

    status, body = endpoint.get(service_account_token(namespace, "prometheus"))

    assert status == 200
    assert 'controller_runtime_reconcile_total{controller="sample",result="success"} 0.0' in body


def test_a_token_not_allowed_to_get_metrics_is_refused(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    grant(namespace, "prometheus")

    status, body = endpoint.get(service_account_token(namespace, "stranger"))

    assert status == 403
    assert body == f"Authorization denied for user system:serviceaccount:{namespace}:stranger\n"


def test_the_grant_covers_metrics_only(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    grant(namespace, "prometheus")

    assert endpoint.get(service_account_token(namespace, "prometheus"), path="/debug")[0] == 403


@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"],
    ids=["none", "empty", "junk", "forged"],
)
def test_a_request_without_a_valid_token_is_unauthorized(endpoint: Endpoint, token: str | None) -> None:
    assert endpoint.get(token) == (401, "Unauthorized\n")


def test_a_token_for_another_audience_is_unauthorized(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    grant(namespace, "prometheus")

    token = service_account_token(namespace, "prometheus", audiences=["pipelines.kubeflow.org"])

    assert endpoint.get(token)[0] == 401


def test_reviews_are_made_once_per_token_per_minute(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    grant(namespace, "prometheus")
    allowed = service_account_token(namespace, "prometheus")
    denied = service_account_token(namespace, "stranger")

    for _ in range(3):
        assert endpoint.get(allowed)[0] == 200
        assert endpoint.get(denied)[0] == 403
    assert endpoint.client.count(TOKEN_REVIEWS) == 2
    assert endpoint.client.count(SUBJECT_ACCESS_REVIEWS) == 2

    endpoint.clock.step(59)
    assert endpoint.get(allowed)[0] == 200
    assert endpoint.client.count(TOKEN_REVIEWS) == 2

    endpoint.clock.step(1)
    assert endpoint.get(allowed)[0] == 200
    assert endpoint.client.count(TOKEN_REVIEWS) == 3
    assert endpoint.client.count(SUBJECT_ACCESS_REVIEWS) == 3


def test_a_new_grant_takes_effect_once_the_cached_denial_expires(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    token = service_account_token(namespace, "late")
    assert endpoint.get(token)[0] == 403

    grant(namespace, "late")

    assert endpoint.get(token)[0] == 403
    endpoint.clock.step(60)
    assert endpoint.get(token)[0] == 200


def test_review_failures_answer_500_and_are_not_cached(
    endpoint: Endpoint, namespace: str, service_account_token: Mint, grant: Callable[[str, str], None]
) -> None:
    grant(namespace, "prometheus")
    token = service_account_token(namespace, "prometheus")

    endpoint.client.failing = True
    assert endpoint.get(token) == (500, "Authentication failed\n")

    endpoint.client.failing = False
    assert endpoint.get(token)[0] == 200


def test_a_plain_http_request_to_the_https_port_is_not_served(endpoint: Endpoint) -> None:
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{endpoint.server.port}/metrics", timeout=5)

    assert endpoint.get(None)[0] == 401  # and the server carries on


def test_the_managers_reviews_have_a_rate_limit_of_their_own(
    control_plane: Any,
    namespace: str,
    service_account_token: Mint,
    grant: Callable[[str, str], None],
    tmp_path: Path,
) -> None:
    chain, key, ca = generate_self_signed(["127.0.0.1"], timedelta(hours=1))
    (tmp_path / "tls.crt").write_bytes(chain)
    (tmp_path / "tls.key").write_bytes(key)
    throttled = Kube(control_plane.admin_configuration(), Metrics(process_collector=False), qps=5, burst=5)
    config = cfg.load(
        {
            "watchNamespaces": [namespace],
            "leaderElection.enabled": False,
            "metrics.bindAddress": "127.0.0.1:0",
            "metrics.secure": True,
            "metrics.certDir": str(tmp_path),
            "health.bindAddress": "0",
        }
    )
    mgr = Manager(config, throttled)
    mgr.start()
    try:
        grant(namespace, "prometheus")
        token = service_account_token(namespace, "prometheus")
        # From here the reconcilers' client owes 100 s of requests, as after a long burst.
        for _ in range(500):
            throttled.limiter.reserve()
        request = urllib.request.Request(
            f"https://127.0.0.1:{mgr.metrics_port}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        verifying = ssl.create_default_context(cadata=ca.decode())
        with urllib.request.urlopen(request, context=verifying, timeout=15) as response:
            assert response.status == 200, "reviewed on the authorizer's own budget"
    finally:
        mgr.shutdown()
        throttled.close()


# ---- without a server --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer a b", None),
    ],
)
def test_bearer_token_is_read_as_the_api_server_reads_it(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_concurrent_requests_with_one_token_wait_for_one_review() -> None:
    cache: ReviewCache[str, str] = ReviewCache(60.0, FakeClock())
    release = threading.Event()
    reviews: list[int] = []

    def review() -> str:
        reviews.append(1)
        release.wait(10)
        return "user"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("t", review))) for _ in range(5)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)

    assert results == ["user"] * 5
    assert len(reviews) == 1


def test_the_cache_forgets_after_its_ttl_and_never_keeps_failures() -> None:
    clock = FakeClock()
    cache: ReviewCache[str, int] = ReviewCache(60.0, clock)
    answers = iter([1, 2])

    def failing() -> int:
        raise RuntimeError("no answer")

    with pytest.raises(RuntimeError):
        cache.get("t", failing)
    assert cache.get("t", lambda: next(answers)) == 1
    clock.step(30)
    assert cache.get("t", lambda: next(answers)) == 1
    clock.step(30)
    assert cache.get("t", lambda: next(answers)) == 2
