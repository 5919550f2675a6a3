"""The chart's protected metrics against the real API server: its roles are enough, and no more.

The chart is applied; the metrics endpoint is then served in this process as the operator serves
it, reviewing tokens *with the chart's ServiceAccount*, so the test shows that the chart's
``<fullname>-metrics-auth`` role lets the operator make the reviews and that its
``<fullname>-metrics-reader`` role, bound through ``rbac.metricsReaders``, lets a scraper in while
any other identity is refused.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import kubernetes
import pytest

from controller.kube import Kube
from controller.metrics import Metrics, MetricsServer
from controller.metricsauth import MetricsAuthorizer
from controller.servingcert import SelfSigned
from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.waiting import wait_until
from tests.chart.chartlib import Installed

Mint = Callable[..., str]
SCRAPER_NAMESPACE = "monitoring"  # where the subject lives; a binding does not need it to exist


class Scraped:
    """A metrics endpoint whose reviews are made with a given identity's token."""

    def __init__(self, control_plane: ControlPlane, operator_token: str) -> None:
        configuration = control_plane.admin_configuration()
        configuration.cert_file = configuration.key_file = None
        configuration.api_key = {"authorization": f"Bearer {operator_token}"}
        self.kube = Kube(configuration, Metrics(process_collector=False))
        served = Metrics(process_collector=False)
        served.init_controller("sample", 1)
        self.server = MetricsServer(
            "127.0.0.1:0",
            served.registry,
            tls=SelfSigned(["127.0.0.1"]),
            authorizer=MetricsAuthorizer(self.kube),
        )
        self.server.start()
        self._context = ssl.create_default_context()
        self._context.check_hostname = False
        self._context.verify_mode = ssl.CERT_NONE  # what the chart's ServiceMonitor does by default

    def scrape(self, token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"https://127.0.0.1:{self.server.port}/metrics", headers=headers)
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def close(self) -> None:
        self.server.stop()
        self.kube.close()


@pytest.fixture(scope="module")
def secured(install: Callable[..., Installed]) -> Installed:
    # The ServiceMonitor too: the API server checks its self-signed (insecureSkipVerify) variant.
    return install(
        {
            "serviceMonitor": {"enabled": True},
            "rbac": {
                "metricsReaders": [
                    {"kind": "ServiceAccount", "name": "prometheus", "namespace": SCRAPER_NAMESPACE}
                ]
            },
        }
    )


@pytest.fixture
def scraped(
    control_plane: ControlPlane,
    api_client: kubernetes.client.ApiClient,
    service_account_token: Mint,
    secured: Installed,
) -> Iterator[Scraped]:
    # The API server's authorizer learns of the chart's bindings through a watch of its own; a
    # scrape before that would be refused, and the refusal cached for a minute.
    authorization = kubernetes.client.AuthorizationV1Api(api_client)
    wait_until(
        lambda: (
            authorization.create_subject_access_review(
                {
                    "spec": {
                        "user": f"system:serviceaccount:{SCRAPER_NAMESPACE}:prometheus",
                        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
                    }
                }
            ).status.allowed
        ),
        timeout=10,
        message="the chart's metrics-reader binding to take effect",
    )
    endpoint = Scraped(control_plane, service_account_token(secured.namespace, secured.service_account))
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def scraper_namespace(api_client: kubernetes.client.ApiClient) -> str:
    try:
        kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": SCRAPER_NAMESPACE}})
    except kubernetes.client.ApiException as error:
        if error.status != 409:
            raise
    return SCRAPER_NAMESPACE


def test_the_bound_scraper_reads_the_metrics(
    scraped: Scraped, scraper_namespace: str, service_account_token: Mint
) -> None:
    token = service_account_token(scraper_namespace, "prometheus")

    status, body = scraped.scrape(token)

    assert status == 200
    assert 'controller_runtime_reconcile_total{controller="sample",result="success"} 0.0' in body


def test_any_other_identity_is_refused(
    scraped: Scraped, secured: Installed, scraper_namespace: str, service_account_token: Mint
) -> None:
    # The operator's own identity may review tokens but not read the metrics.
    operator = service_account_token(secured.namespace, secured.service_account)
    stranger = service_account_token(scraper_namespace, "stranger")

    assert scraped.scrape(stranger) == (
        403,
        f"Authorization denied for user system:serviceaccount:{scraper_namespace}:stranger\n",
    )
    assert scraped.scrape(operator)[0] == 403
    assert scraped.scrape(None) == (401, "Unauthorized\n")


def test_without_the_review_permissions_the_scrape_fails_closed(
    install: Callable[..., Installed],
    control_plane: ControlPlane,
    service_account_token: Mint,
    scraper_namespace: str,
) -> None:
    plain = install({"config": {"metrics": {"secure": False}}})
    endpoint = Scraped(control_plane, service_account_token(plain.namespace, plain.service_account))
    try:
        status, message = endpoint.scrape(service_account_token(scraper_namespace, "prometheus"))
    finally:
        endpoint.close()

    assert (status, message) == (500, "Authentication failed\n")
