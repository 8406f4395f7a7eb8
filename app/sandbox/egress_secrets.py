"""The files behind vault secret substitution, per session (synchronous: engine threads run it).

- ``<session>/proxy/secrets.json`` and ``leaf.pem`` (0600, owned by the proxy's user; the
  directory is mounted read-only into the proxy only): placeholders, real values, hosts and
  locations, and the key and certificate the proxy shows for the names where it substitutes.
  Rewritten at every ``ensure`` when something changed (rotation, archival, networking), and read
  again by the proxy when the file changes.
- ``<session>/proxy/intermediate.pem`` (0600, the proxy's): the session's intermediate CA, for
  the leaves the proxy mints itself for hosts not known ahead (egress_bundle.py).
- ``<session>/proxy/upstream-ca.pem``: what the proxy trusts upstream (the host's CA bundle plus
  ``MAS_SANDBOX_EGRESS_CA_BUNDLE``).
- ``<session>/trust/``: the host's CA bundle plus the instance CA, and the CA alone, mounted
  read-only into the sandbox at /etc/mas-trust (``SSL_CERT_FILE`` and friends point there).

The sandbox gets placeholders in its environment, never a value.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from pathlib import Path

from docker.types import Mount

from app.config import Settings
from app.sandbox import egress
from app.sandbox.containers import CONFIG_NAME, SECRETS_NAME, UPSTREAM_CA_NAME, Naming, proxy_owner
from app.sandbox.egress_ca import EgressAuthority, write_atomic
from app.sandbox.interface import EgressSecret

Secrets = tuple[EgressSecret, ...]

LEAF_NAME = "leaf.pem"
INTERMEDIATE_NAME = "intermediate.pem"


def host_ca_bundle() -> bytes:
    """The host's trusted CAs (Debian's bundle, or whatever OpenSSL is configured with)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


class SecretFiles:
    def __init__(self, settings: Settings, naming: Naming) -> None:
        self._settings = settings
        self._naming = naming
        self.authority = EgressAuthority(naming.state_root, naming.instance)
        self._written: dict[str, str] = {}

    def environment(self, session_id: str, secrets: Secrets) -> dict[str, str]:
        """The sandbox's variables: a placeholder for each secret, and where the CAs are."""
        placeholders = {s.name: self.authority.placeholder(session_id, s.name) for s in secrets}
        return {**placeholders, **egress.trust_env()}

    def prepare(self, session_id: str, secrets: Secrets) -> Mount:
        """Everything a new sandbox with secrets needs (after the proxy's allow-list is written);
        the trust directory's mount."""
        session_dir = self._naming.session_dir(session_id)
        ca = self.authority.certificate_pem()
        host = host_ca_bundle()
        extra = self._settings.sandbox_egress_ca_bundle
        upstream = host + b"\n" + (extra.read_bytes() if extra is not None else b"")
        write_atomic(session_dir / "proxy" / UPSTREAM_CA_NAME, upstream, 0o644)
        trust = session_dir / "trust"
        trust.mkdir(parents=True, exist_ok=True)
        write_atomic(trust / Path(egress.TRUST_BUNDLE).name, host + b"\n" + ca, 0o644)
        write_atomic(trust / Path(egress.TRUST_CA).name, ca, 0o644)
        self._write(session_id, secrets)
        return Mount(egress.TRUST_DIR, str(trust), type="bind", read_only=True)

    def refresh(self, session_id: str, secrets: Secrets) -> None:
        """Renew a sandbox's secrets (values, hosts, locations) if it was created with any."""
        if self.in_use(session_id):
            self._write(session_id, secrets)

    def in_use(self, session_id: str) -> bool:
        """Whether the sandbox was created with secrets (their file exists)."""
        return (self._naming.session_dir(session_id) / "proxy" / SECRETS_NAME).exists()

    def forget(self, session_id: str) -> None:
        self._written.pop(session_id, None)

    def _write(self, session_id: str, secrets: Secrets) -> None:
        directory = self._naming.session_dir(session_id) / "proxy"
        allowed = json.loads((directory / CONFIG_NAME).read_text())
        environment = None if allowed.get("any_host") else list(allowed["allowed_hosts"])
        entries: list[egress.SecretEntry] = []
        names: list[str] = []
        for secret in secrets:
            names += egress.substitution_names(environment, secret.hosts)
            entries.append(
                {
                    "placeholder": self.authority.placeholder(session_id, secret.name),
                    "value": secret.value,
                    "hosts": None if secret.hosts is None else list(secret.hosts),
                    "header": secret.header,
                    "body": secret.body,
                }
            )
        names = list(dict.fromkeys(names))[: egress.MAX_NAMES]
        config = egress.secrets_config(entries, names).encode()
        leaf = self.authority.leaf(names) if names else b""
        digest = hashlib.sha256(config + leaf).hexdigest()
        if self._written.get(session_id) == digest and (directory / SECRETS_NAME).exists():
            return  # (the intermediate lives as long as a leaf: renewed with it)
        owner = proxy_owner()
        previous = directory / INTERMEDIATE_NAME
        current = previous.read_bytes() if previous.exists() else None
        intermediate = self.authority.intermediate(current)
        if intermediate != current:
            write_atomic(previous, intermediate, 0o600, owner)
        # The certificate first: the proxy reads the names from secrets.json, then the leaf.
        write_atomic(directory / LEAF_NAME, leaf, 0o600, owner)
        write_atomic(directory / SECRETS_NAME, config, 0o600, owner)
        self._written[session_id] = digest
