"""The certificate authority of one mas instance's egress proxies (vault secret substitution).

The proxy of a session with `environment_variable` credentials terminates TLS for the hosts
where a secret may be substituted, with a leaf certificate for those names signed by this CA;
the sandbox trusts the CA's certificate. The CA's private key never leaves the host: it is kept
in ``<state dir>/<instance>/.egress-ca/ca-key.pem`` (0600, directory 0700), and leaves are
minted here (EC P-256), cached by their set of names and renewed a week before they expire.
For hosts not known ahead, each session's proxy gets an intermediate CA of its own (30 days,
path length 0) and mints leaves itself (sandbox/egress/minter.py).
The same directory holds the key of the placeholders (HMAC-SHA256 of sandbox and variable name):
a placeholder is stable for a sandbox's life and says nothing about the secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = timedelta(days=3650)
LEAF_LIFETIME = timedelta(days=30)
LEAF_RENEWAL = timedelta(days=7)
_BACKDATE = timedelta(hours=1)  # clocks of containers and host may differ a little


class EgressAuthority:
    def __init__(self, state_root: Path, instance: str) -> None:
        self.directory = state_root / ".egress-ca"
        self._instance = instance
        self._ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None
        self._placeholder_key: bytes | None = None

    # --- the CA ---------------------------------------------------------------------------------
    def certificate_pem(self) -> bytes:
        return self._authority()[1].public_bytes(serialization.Encoding.PEM)

    def _authority(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if self._ca is None:
            with self._locked():
                self._ca = self._load() or self._create()
        return self._ca

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Several mas processes share a state directory: the first creates, the others read."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
        key_path, cert_path = self.directory / "ca-key.pem", self.directory / "ca.pem"
        if not (key_path.exists() and cert_path.exists()):
            return None
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if (
            not isinstance(key, ec.EllipticCurvePrivateKey)
            or cert.not_valid_after_utc < _now() + LEAF_LIFETIME
        ):
            return None  # expiring (or not ours): a new CA; sandboxes made after trust the new one
        return key, cert

    def _create(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mas"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"mas egress proxy CA ({self._instance})"[:64]),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + CA_LIFETIME)
            # One level below: each session's proxy gets an intermediate of its own (``intermediate``).
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(self.directory / "ca-key.pem", key_pem)
        write_atomic(self.directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        for stale in (self.directory / "leaves").glob("*.pem"):
            stale.unlink(missing_ok=True)  # signed by the previous CA
        return key, cert

    # --- leaves ---------------------------------------------------------------------------------
    def leaf(self, names: Sequence[str]) -> bytes:
        """A private key and certificate (PEM, in that order) valid for ``names`` (host names,
        ``*.`` wildcards or IP literals), from the cache while far from expiry."""
        wanted = sorted(set(names))
        key, ca = self._authority()
        digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:40]
        path = self.directory / "leaves" / f"{digest}.pem"
        with contextlib.suppress(FileNotFoundError, ValueError):
            pem = path.read_bytes()
            cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
            if cert.issuer == ca.subject and cert.not_valid_after_utc > _now() + LEAF_RENEWAL:
                return pem
        pem = self._mint(key, ca, wanted)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        _write_private(path, pem)
        return pem

    def intermediate(self, previous: bytes | None) -> bytes:
        """A CA for one session's proxy to mint leaves with on demand (key and certificate, PEM):
        ``previous`` again while far from expiry and issued by this CA. Only that proxy holds
        its key, and only that session's sandbox sends its traffic there."""
        key, ca = self._authority()
        if previous:
            with contextlib.suppress(ValueError):
                cert = x509.load_pem_x509_certificate(
                    previous[previous.index(b"-----BEGIN CERTIFICATE-----") :]
                )
                if cert.issuer == ca.subject and cert.not_valid_after_utc > _now() + LEAF_RENEWAL:
                    return previous
        own = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mas egress proxy (session)")]))
            .issuer_name(ca.subject)
            .public_key(own.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(own.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        key_pem = own.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key_pem + cert.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def _mint(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: list[str]) -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key_pem + cert.public_bytes(serialization.Encoding.PEM)

    # --- placeholders ---------------------------------------------------------------------------
    def placeholder(self, sandbox_id: str, variable: str) -> str:
        """What the sandbox sees instead of the secret: stable for this sandbox and variable (so a
        rotated or replaced credential keeps it), unguessable without the host's key."""
        if self._placeholder_key is None:
            with self._locked():
                path = self.directory / "placeholder.key"
                if not path.exists():
                    _write_private(path, secrets.token_hex(32).encode())
                self._placeholder_key = path.read_bytes().strip()
        mac = hmac.new(self._placeholder_key, f"{sandbox_id}\0{variable}".encode(), hashlib.sha256)
        return f"mas_placeholder_{mac.hexdigest()[:40]}"


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _now() -> datetime:
    return datetime.now(UTC)


def _write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o600)


def write_atomic(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Written under a temporary name with its final mode (and owner), then renamed: never
    readable half written, never readable by others for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)  # the umask may have taken bits away
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
