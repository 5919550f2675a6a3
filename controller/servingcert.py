"""The certificate the HTTPS metrics endpoint serves: from files, re-read when renewed, or self-signed.

As controller-runtime's metrics server does: with a certificate directory it serves ``tls.crt``
and ``tls.key`` from there (the layout of a ``kubernetes.io/tls`` Secret, which cert-manager
writes) and picks up a renewed pair without a restart, as its ``certwatcher`` does; without one it
generates a self-signed certificate at start-up (``certutil.GenerateSelfSignedCertKey``: a
throwaway CA and a serving certificate signed by it), which scrapers accept with
``insecureSkipVerify``.

A :class:`CertificateSource` hands out the current ``ssl.SSLContext``; the server asks for it on
every new connection, so a reload takes effect on the next connection and never interrupts one.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.clock import Clock, RealClock

log = structlog.get_logger("controller.servingcert")

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
# How often the files are looked at for a renewal (controller-runtime's certwatcher polls as often).
RELOAD_CHECK_INTERVAL = 10.0
SELF_SIGNED_VALIDITY = timedelta(days=365)


class CertificateSource(Protocol):
    """Where a TLS server gets the context for its next connection."""

    def context(self) -> ssl.SSLContext: ...


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context serving ``cert_file`` (the chain, leaf first) with ``key_file``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


# ---- from files -------------------------------------------------------------------------------


class CertificateFiles:
    """``tls.crt`` and ``tls.key`` of a directory, reloaded when they change.

    A mounted Secret is updated by swapping a symlink, so both files change at once; a pair caught
    half-written (key and certificate that do not match) is not loaded and the previous one is
    served until the next check finds a consistent pair.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        check_interval: float = RELOAD_CHECK_INTERVAL,
    ) -> None:
        self._cert = Path(directory) / CERT_FILE
        self._key = Path(directory) / KEY_FILE
        self._clock = clock or RealClock()
        self._check_interval = check_interval
        self._lock = threading.Lock()
        try:
            self._signature = self._stat()
            self._context = server_context(self._cert, self._key)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot serve HTTPS with {self._cert} and {self._key}: {error}") from None
        self._checked = self._clock.monotonic()

    def context(self) -> ssl.SSLContext:
        with self._lock:
            now = self._clock.monotonic()
            if now - self._checked >= self._check_interval:
                self._checked = now
                self._reload_if_changed()
            return self._context

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        # os.stat follows the Secret volume's symlinks to the files of the current version.
        return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in map(os.stat, (self._cert, self._key)))

    def _reload_if_changed(self) -> None:
        try:
            signature = self._stat()
            if signature == self._signature:
                return
            context = server_context(self._cert, self._key)
        except (OSError, ssl.SSLError) as error:
            log.warning(
                "cannot load the renewed serving certificate; still serving the previous one",
                error=str(error),
            )
            return
        self._context, self._signature = context, signature
        log.info("serving certificate reloaded", cert=str(self._cert))


# ---- self-signed ------------------------------------------------------------------------------


def default_hosts() -> list[str]:
    """Names a self-signed certificate is made for: this host (the pod's name) and loopback."""
    return [socket.gethostname(), "localhost", "127.0.0.1", "::1"]


class SelfSigned:
    """A certificate generated once, at start-up, signed by a throwaway CA.

    ``ca_pem`` is that CA, for a client that wants to verify anyway (tests do). The key exists in
    memory only: the files ``ssl`` needs to load it are written to a private temporary directory
    and removed at once.
    """

    def __init__(
        self, hosts: Sequence[str] | None = None, *, validity: timedelta = SELF_SIGNED_VALIDITY
    ) -> None:
        chain_pem, key_pem, self.ca_pem = generate_self_signed(hosts or default_hosts(), validity)
        with tempfile.TemporaryDirectory(prefix="serving-cert-") as directory:
            cert_file, key_file = Path(directory) / CERT_FILE, Path(directory) / KEY_FILE
            for path, data in ((cert_file, chain_pem), (key_file, key_pem)):
                path.touch(mode=0o600)
                path.write_bytes(data)
            self._context = server_context(cert_file, key_file)

    def context(self) -> ssl.SSLContext:
        return self._context


def generate_self_signed(hosts: Sequence[str], validity: timedelta) -> tuple[bytes, bytes, bytes]:
    """Returns ``(chain, key, ca)`` in PEM: a serving certificate for ``hosts`` (DNS names or IP
    addresses) followed by the CA that signed it, its private key, and the CA alone."""
    now = datetime.now(UTC)
    not_before, not_after = now - timedelta(hours=1), now + validity
    stamp = int(now.timestamp())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    # Common names are at most 64 characters; the hosts themselves are in the SANs.
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"self-signed-ca@{stamp}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return serving.public_bytes(serialization.Encoding.PEM) + ca_pem, key_pem, ca_pem


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
