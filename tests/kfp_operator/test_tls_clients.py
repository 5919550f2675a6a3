"""The KFP and ML Metadata clients over mutual TLS: an emulator that serves both with a certificate
of the local stack's PKI and asks clients for one signed by the same CA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kfp_devstack.emulator import Emulator, EmulatorConfig
from kfp_devstack.pki import Pki, ensure_pki
from kfp_operator.clients.kfp import KfpClient, KfpMetrics
from kfp_operator.clients.mlmd import MlmdClient, MlmdMetrics, MlmdUnavailable, channel_credentials
from kfp_operator.settings import KfpConfig
from reconcilers.clients import KfpError


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def emulator(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(
        state_dir=tmp_path_factory.mktemp("kfp"),
        tls_cert=pki.serving_cert,
        tls_key=pki.serving_key,
        tls_client_ca=pki.ca_cert,
    )
    with Emulator(config) as running:
        yield running


def kfp(emulator: Emulator, **tls: Path) -> KfpClient:
    config = KfpConfig(endpoint=emulator.url, **{key: str(path) for key, path in tls.items()})
    return KfpClient(config, KfpMetrics(CollectorRegistry()))


def mlmd(emulator: Emulator, **tls: Path) -> MlmdClient:
    credentials = channel_credentials(tls=True, **{key: str(path) for key, path in tls.items()})
    return MlmdClient(
        emulator.mlmd_host, emulator.mlmd_port, MlmdMetrics(CollectorRegistry()), credentials=credentials
    )


def test_kfp_answers_a_client_with_the_ca_and_a_certificate(emulator: Emulator, pki: Pki) -> None:
    client = kfp(emulator, ca_file=pki.ca_cert, cert_file=pki.admin_cert, key_file=pki.admin_key)

    assert client.get_pipeline_by_name("no-such-pipeline", "") is None  # an answer: 404


@pytest.mark.parametrize("missing", ["the CA", "a client certificate"])
def test_kfp_is_not_reached_without_the_ca_or_a_certificate(
    emulator: Emulator, pki: Pki, missing: str
) -> None:
    tls = {"ca_file": pki.ca_cert} if missing == "a client certificate" else {}
    with pytest.raises(KfpError) as raised:
        kfp(emulator, **tls).get_pipeline_by_name("p", "")
    assert raised.value.status is None and raised.value.is_transient


def test_ml_metadata_answers_a_client_with_the_ca_and_a_certificate(emulator: Emulator, pki: Pki) -> None:
    client = mlmd(emulator, ca_file=pki.ca_cert, cert_file=pki.admin_cert, key_file=pki.admin_key)

    assert client.get_context_id("system.PipelineRun", "no-such-run") is None


@pytest.mark.parametrize("missing", ["the CA", "a client certificate"])
def test_ml_metadata_is_not_reached_without_the_ca_or_a_certificate(
    emulator: Emulator, pki: Pki, missing: str
) -> None:
    tls = {"ca_file": pki.ca_cert} if missing == "a client certificate" else {}
    with pytest.raises(MlmdUnavailable):
        mlmd(emulator, **tls).get_context_id("system.PipelineRun", "r")
