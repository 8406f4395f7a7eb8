"""The networking policy of limited sessions and the vault secrets of any session, as the egress
proxy's configuration (pure data).

A limited session's container has no network at all (Docker's `none`: loopback only). Its one
way out is a unix socket, bind-mounted from a per-session proxy container on the egress network
(sandbox/egress/, our own); the tool server relays 127.0.0.1:3128 to it, and HTTP(S)_PROXY point
there. The proxy lets through only hosts of the allow-list (plain HTTP to ports 80/443 with a
matching Host header, TLS tunnels to 443 whose SNI is the tunnel's host) and answers 403 to
everything else. Names are matched, never addresses: an IP literal is refused unless listed.

A session with `environment_variable` credentials gets the proxy whatever its networking (under
`unrestricted` the proxy lets every host through but still no loopback or metadata address). The
proxy terminates TLS for the names where a secret may be substituted, the names both the
credential's and the environment's networking allow (``substitution_names``), and passes other
tunnels through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypedDict
from urllib.parse import urlsplit

from app.shared.environment_config import NetworkingConfig
from app.shared.hosts import allow_list_problem

PROXY_PORT = 3128

# What `allow_package_managers` opens: the public registries of the six managers.
PACKAGE_MANAGER_HOSTS = (
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "rubygems.org",
    "index.rubygems.org",
    "rubygems.global.ssl.fastly.net",
    "proxy.golang.org",
    "sum.golang.org",
    "storage.googleapis.com",
)


def is_limited(networking: NetworkingConfig) -> bool:
    return networking.get("type") == "limited"


def allowed_hosts(
    networking: NetworkingConfig, mcp_hosts: Iterable[str], mirrors: Iterable[str | None]
) -> list[str]:
    """The allow-list of a limited session, lower-cased and de-duplicated in order."""
    if networking["type"] != "limited":
        return []
    hosts = [str(host) for host in networking.get("allowed_hosts") or []]
    if networking.get("allow_package_managers"):
        hosts += PACKAGE_MANAGER_HOSTS
        # Configured mirrors are the package managers' registries too.
        hosts += [urlsplit(url.removeprefix("sparse+")).hostname or "" for url in mirrors if url]
    if networking.get("allow_mcp_servers"):
        hosts += [urlsplit(h).hostname or "" if "://" in h else h for h in mcp_hosts]
    cleaned = (host.strip().lower().rstrip(".") for host in hosts if host and host.strip())
    # Entries stored before the API refused them (`*.com`, 169.254.169.254) are not enforced.
    return list(dict.fromkeys(host for host in cleaned if allow_list_problem(host) is None))


def proxy_config(hosts: Iterable[str] | None) -> str:
    """The proxy's configuration file (sandbox/egress/policy.py reads it). An empty list denies
    everything, like an empty hosted allow-list; None lets any host through (unrestricted)."""
    if hosts is None:
        return json.dumps({"allowed_hosts": [], "any_host": True}, indent=1) + "\n"
    return json.dumps({"allowed_hosts": list(hosts)}, indent=1) + "\n"


# --- vault secrets ------------------------------------------------------------------------------
TRUST_DIR = "/etc/mas-trust"
TRUST_BUNDLE = f"{TRUST_DIR}/ca-certificates.crt"
TRUST_CA = f"{TRUST_DIR}/mas-egress-ca.crt"
MAX_NAMES = 100  # names in one leaf certificate


def matches(pattern: str, host: str) -> bool:
    """A proxy allow-list entry against a host name (as sandbox/egress/policy.py matches)."""
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and len(host) > len(suffix)
    return pattern == host


def _clean(hosts: Iterable[str]) -> list[str]:
    cleaned = (h.strip().lower().rstrip(".") for h in hosts if h and h.strip())
    return list(dict.fromkeys(h for h in cleaned if allow_list_problem(h) is None))


def _within(narrow: str, wide: str) -> bool:
    """Whether every name ``narrow`` matches is matched by ``wide`` too."""
    if narrow == wide:
        return True
    if wide.startswith("*."):
        return matches(wide, narrow.removeprefix("*.")) if narrow.startswith("*.") else matches(wide, narrow)
    return False


def substitution_names(environment: list[str] | None, credential: Iterable[str] | None) -> list[str]:
    """The names a credential's secret is known ahead to be substituted on, for the host-minted
    certificate: those both the environment's allow-list and the credential's (None:
    unrestricted) allow. Both unrestricted: none; the proxy mints per host itself (minter.py)."""
    if environment is None and credential is None:
        return []
    if credential is None:
        return list(environment or [])
    mine = _clean(credential)
    if environment is None:
        return mine
    names = [c for c in mine if any(_within(c, e) for e in environment)]
    names += [e for e in environment if any(_within(e, c) for c in mine)]
    return list(dict.fromkeys(names))


class SecretEntry(TypedDict):
    """One secret in the proxy's secrets file (``sandbox/egress`` reads it)."""

    placeholder: str
    value: str
    hosts: list[str] | None
    header: bool
    body: bool


def secrets_config(entries: list[SecretEntry], names: list[str]) -> str:
    """The proxy's secrets file: each secret's placeholder, value, hosts (None: any the
    environment allows), locations, and the names its TLS certificate covers."""
    return json.dumps({"secrets": entries, "names": names}, indent=1) + "\n"


def trust_env() -> dict[str, str]:
    """Where the sandbox's TLS clients find the CA bundle that includes the proxy's CA."""
    return {
        "SSL_CERT_FILE": TRUST_BUNDLE,
        "REQUESTS_CA_BUNDLE": TRUST_BUNDLE,
        "CURL_CA_BUNDLE": TRUST_BUNDLE,
        "GIT_SSL_CAINFO": TRUST_BUNDLE,
        "PIP_CERT": TRUST_BUNDLE,
        "NODE_EXTRA_CA_CERTS": TRUST_CA,
    }


def proxy_env() -> dict[str, str]:
    url = f"http://127.0.0.1:{PROXY_PORT}"
    return {
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url,
        "http_proxy": url,
        "https_proxy": url,
        "NO_PROXY": "localhost,127.0.0.1",
        "no_proxy": "localhost,127.0.0.1",
    }
