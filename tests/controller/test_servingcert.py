"""The HTTPS metrics endpoint's certificate: self-signed at start-up, or from files and reloaded.

The files are replaced the way the kubelet updates a mounted Secret: the new pair is written to a
fresh directory and a ``..data`` symlink is swapped to it, so both files change at once.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from controller.clock import FakeClock
from controller.metrics import Metrics, MetricsServer
from controller.servingcert import (
    CERT_FILE,
    KEY_FILE,
    CertificateFiles,
    CertificateSource,
    SelfSigned,
    generate_self_signed,
)


def served_certificate(port: int) -> bytes:
    """The DER certificate a TLS server on ``port`` presents (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def serving_der(pem_chain: bytes) -> bytes:
    """The DER form of the first (serving) certificate of a PEM chain."""
    return x509.load_pem_x509_certificates(pem_chain)[0].public_bytes(Encoding.DER)


class SecretVolume:
    """A directory laid out as the kubelet lays out a mounted Secret."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0

    def write(self, cert: bytes, key: bytes) -> None:
        self.version += 1
        data = self.root / f"..{self.version}"
        data.mkdir()
        (data / CERT_FILE).write_bytes(cert)
        (data / KEY_FILE).write_bytes(key)
        link = self.root / "..data_tmp"
        link.symlink_to(data.name)
        link.replace(self.root / "..data")  # atomic, as the kubelet's AtomicWriter does
        for name in (CERT_FILE, KEY_FILE):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")


def new_pair(host: str = "localhost") -> tuple[bytes, bytes]:
    chain, key, _ = generate_self_signed([host], timedelta(days=1))
    return chain, key


Serve = Callable[[CertificateSource], MetricsServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[MetricsServer] = []

    def start(tls: CertificateSource) -> MetricsServer:
        server = MetricsServer("127.0.0.1:0", Metrics(process_collector=False).registry, tls=tls)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_a_self_signed_certificate_verifies_against_its_ca_for_the_given_hosts(serve: Serve) -> None:
    tls = SelfSigned(["metrics.example", "localhost", "127.0.0.1"])
    server = serve(tls)
    context = ssl.create_default_context(cadata=tls.ca_pem.decode())

    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as verified,
    ):
        assert verified.version() in ("TLSv1.2", "TLSv1.3")
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
        context.wrap_socket(raw, server_hostname="elsewhere.example"),
    ):
        pass


def test_each_start_generates_its_own_certificate(serve: Serve) -> None:
    first, second = serve(SelfSigned()), serve(SelfSigned())

    assert served_certificate(first.port) != served_certificate(second.port)


def test_certificates_from_files_are_reloaded_when_the_secret_changes(tmp_path: Path, serve: Serve) -> None:
    volume = SecretVolume(tmp_path)
    first, second = new_pair(), new_pair()
    volume.write(*first)
    clock = FakeClock()
    server = serve(CertificateFiles(tmp_path, clock=clock, check_interval=10))
    assert served_certificate(server.port) == serving_der(first[0])

    volume.write(*second)
    clock.step(9)
    assert served_certificate(server.port) == serving_der(first[0])  # not looked at yet
    clock.step(1)
    assert served_certificate(server.port) == serving_der(second[0])


def test_a_mismatched_pair_is_not_loaded_until_it_is_consistent(tmp_path: Path, serve: Serve) -> None:
    volume = SecretVolume(tmp_path)
    first, second, third = new_pair(), new_pair(), new_pair()
    volume.write(*first)
    clock = FakeClock()
    server = serve(CertificateFiles(tmp_path, clock=clock, check_interval=10))

    volume.write(second[0], third[1])  # a certificate with another pair's key
    clock.step(10)
    assert served_certificate(server.port) == serving_der(first[0])

    volume.write(*third)
    clock.step(10)
    assert served_certificate(server.port) == serving_der(third[0])


def test_missing_files_stop_the_start_with_a_message_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot serve HTTPS with .*tls\.crt and .*tls\.key"):
        CertificateFiles(tmp_path)


def test_the_self_signed_key_is_not_left_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    SelfSigned()

    assert list(tmp_path.iterdir()) == []


def test_a_long_pod_name_still_makes_a_certificate() -> None:
    host = "a-release-name-that-is-rather-long-kfp-operator-7d9f8c6b5d-x2x4z"[:63]

    chain, _, _ = generate_self_signed([host, "localhost"], timedelta(days=1))

    serving = x509.load_pem_x509_certificates(chain)[0]
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host in names.get_values_for_type(x509.DNSName)
