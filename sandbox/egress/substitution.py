"""Vault secrets the proxy puts in place of their placeholders, and where.

The host writes the secrets file (placeholder, value, hosts, header/body) and a leaf certificate
for the names where substitution may happen; both are read again whenever the file changes, so
a rotated secret, an archived credential or new hosts reach a running session. A secret is used
on a host only if the leaf covers it (TLS is terminated for those names only) and the secret's
own hosts (None: any the environment allows) match it; for a host a secret applies to that the
leaf does not cover, the proxy mints a leaf itself (minter.py). Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from .messages import Request
from .policy import Policy, normalise

log = logging.getLogger("mas.egress")
_BASIC_HEADERS = frozenset({"authorization", "proxy-authorization"})


@dataclass(frozen=True)
class Secret:
    placeholder: str
    value: str = field(repr=False)
    hosts: Policy | None
    header: bool
    body: bool

    def applies(self, host: str) -> bool:
        return self.hosts is None or self.hosts.allows(host)


@dataclass(frozen=True)
class Substitutions:
    secrets: tuple[Secret, ...] = ()
    names: Policy = field(default_factory=lambda: Policy.from_hosts([]))
    context: ssl.SSLContext | None = None  # the proxy's TLS server side, with the leaf

    def covers(self, host: str) -> bool:
        """Whether the leaf is valid for ``host``: its wildcards span one label, as clients check."""
        name = normalise(host)
        if self.context is None:
            return False
        if name in self.names.exact:
            return True
        return any(
            name.endswith(s) and "." not in name[: -len(s)] and name != s[1:] for s in self.names.suffixes
        )

    def applying(self, host: str) -> list[Secret]:
        """The secrets that may be substituted on ``host`` (the environment allowed it already)."""
        return [s for s in self.secrets if s.applies(host)]


class SecretsFile:
    """The current substitutions, loaded again when the file's identity or time changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._current = Substitutions()

    def current(self) -> Substitutions:
        if self.path is None:
            return self._current
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._current = None, Substitutions()
            return self._current
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            try:
                self._current = _load(self.path, self.path.with_name("leaf.pem"))
            except (OSError, ValueError, KeyError, ssl.SSLError) as exc:
                log.error("cannot load the secrets file: %s", type(exc).__name__)
                self._current = Substitutions()
            self._stamp = stamp
        return self._current


def _load(path: Path, leaf: Path) -> Substitutions:
    config = json.loads(path.read_text())
    secrets = tuple(
        Secret(
            placeholder=str(entry["placeholder"]),
            value=str(entry["value"]),
            hosts=None if entry["hosts"] is None else Policy.from_hosts(list(entry["hosts"])),
            header=bool(entry["header"]),
            body=bool(entry["body"]),
        )
        for entry in config["secrets"]
    )
    names = list(config["names"])
    context = None
    if names:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])  # one request per connection, no HTTP/2
        context.load_cert_chain(str(leaf))
    return Substitutions(secrets, Policy.from_hosts(names), context)


# --- in requests ----------------------------------------------------------------------------------
def substitute_head(request: Request, secrets: list[Secret]) -> int:
    """Placeholders in header values replaced (in Basic credentials too); how many headers."""
    usable = [s for s in secrets if s.header and "\r" not in s.value and "\n" not in s.value]
    if not usable:
        return 0
    changed = 0
    for i, (name, value) in enumerate(request.headers):
        new = _in_header(name, value, usable)
        if new != value:
            request.headers[i] = (name, new)
            changed += 1
    return changed


def _in_header(name: str, value: str, secrets: list[Secret]) -> str:
    new = _replace_text(value, secrets)
    scheme, _, credentials = new.partition(" ")
    if name.lower() in _BASIC_HEADERS and scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return new
        replaced = _replace_text(decoded, secrets)
        if replaced != decoded:
            return f"{scheme} {base64.b64encode(replaced.encode('latin-1')).decode('ascii')}"
    return new


def _replace_text(text: str, secrets: list[Secret]) -> str:
    """Header text is latin-1 on the wire: a value goes in as its UTF-8 bytes."""
    for secret in secrets:
        if secret.placeholder in text:
            text = text.replace(secret.placeholder, secret.value.encode().decode("latin-1"))
    return text


def substitute_body(body: bytes, secrets: list[Secret]) -> bytes:
    for secret in secrets:
        if secret.body:
            body = body.replace(secret.placeholder.encode(), secret.value.encode())
    return body
