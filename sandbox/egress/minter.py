"""Leaf certificates the proxy mints itself, for hosts not known ahead.

A credential and an environment both unrestricted allow substitution on any host, and a name
two labels under a wildcard is not covered by the host's pre-minted certificate: for those the
proxy signs a leaf for exactly the host it was asked for, with its session's intermediate CA
(``intermediate.pem``: issued by the instance CA the sandbox trusts, only this proxy has its
key). This needs ``cryptography``, bundled by the host (``--site``); without it (another Python
minor version in the proxy image) nothing is minted and such tunnels pass through untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("mas.egress")
_CACHED = 256


class Minter:
    def __init__(self, intermediate: Path | None) -> None:
        self.path = intermediate
        self._stamp: tuple[int, int, int] | None = None
        self._signer: tuple[Any, Any] | None = None  # (key, certificate) of the intermediate
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._crypto: Any = None
        if intermediate is not None:
            try:
                from cryptography import x509  # noqa: F401  (bundled: imported only here)

                self._crypto = True
            except ImportError as exc:
                log.warning("cannot mint certificates (no usable cryptography): %s", exc)

    def context(self, host: str) -> ssl.SSLContext | None:
        """A TLS server context with a leaf for ``host``, or None when nothing can be minted."""
        if not self._crypto or not self._load():
            return None
        if host not in self._contexts:
            if len(self._contexts) >= _CACHED:
                self._contexts.clear()
            self._contexts[host] = self._mint(host)
        return self._contexts[host]

    def _load(self) -> bool:
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization

            pem = self.path.read_bytes()
            cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
            key = serialization.load_pem_private_key(pem, password=None)
            self._signer, self._stamp = (key, cert), stamp
            self._contexts.clear()  # renewed: leaves are minted again under the new one
        return self._signer is not None

    def _mint(self, host: str) -> ssl.SSLContext:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        assert self._signer is not None
        signer_key, signer = self._signer
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(signer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(min(now + timedelta(days=7), signer.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName([name]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(signer_key, hashes.SHA256())
        )
        chain = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        chain += cert.public_bytes(serialization.Encoding.PEM) + signer.public_bytes(
            serialization.Encoding.PEM
        )
        return server_context(chain)


def server_context(pem: bytes) -> ssl.SSLContext:
    """A TLS server context from a key and certificate chain held in memory (the proxy's root
    filesystem is read-only, and the key is never written anywhere)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # one request per connection, no HTTP/2
    fd = os.memfd_create("leaf", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return context
