"""The networking policy of limited sessions, as the egress proxy's configuration (pure data).

A limited session's container has no network at all (Docker's `none`: loopback only). Its one
way out is a unix socket, bind-mounted from a per-session proxy container on the egress network
(sandbox/egress/, our own); the tool server relays 127.0.0.1:3128 to it, and HTTP(S)_PROXY point
there. The proxy lets through only hosts of the allow-list (plain HTTP to ports 80/443 with a
matching Host header, TLS tunnels to 443 whose SNI is the tunnel's host) and answers 403 to
everything else. Names are matched, never addresses: an IP literal is refused unless listed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

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


def is_limited(networking: dict[str, Any]) -> bool:
    return networking.get("type") == "limited"


def allowed_hosts(
    networking: dict[str, Any], mcp_hosts: Iterable[str], mirrors: Iterable[str | None]
) -> list[str]:
    """The allow-list of a limited session, lower-cased and de-duplicated in order."""
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


def proxy_config(hosts: Iterable[str]) -> str:
    """The proxy's configuration file (sandbox/egress/policy.py reads it). An empty list denies
    everything, like an empty hosted allow-list."""
    return json.dumps({"allowed_hosts": list(hosts)}, indent=1) + "\n"


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
