"""Hostname checks shared by environment allow-lists and the web tools' domain lists."""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
# Names that only make sense inside one network: a web tool on the public internet never reaches them.
_PRIVATE_SUFFIXES = (".local", ".internal", ".localhost", ".lan", ".home.arpa")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def host_problem(
    value: str, *, wildcard: bool = False, path: bool = False, public: bool = False
) -> str | None:
    """Why ``value`` is not an acceptable bare hostname, or None when it is.

    ``wildcard`` allows a leading ``*.``; ``path`` allows a ``/path`` suffix; ``public`` rejects IP
    addresses, single-label names (``localhost``, a bare TLD) and private suffixes.
    """
    if value == "":
        return "must not be empty"
    if "://" in value:
        return "must be a bare hostname without a scheme"
    host, slash, _ = value.partition("/")
    if slash and not path:
        return "must be a bare hostname without a path"
    if ":" in host and not _is_ip(host):
        return "must be a bare hostname without a port"
    if wildcard and host.startswith("*."):
        host = host[2:]
    if public and _is_ip(host):
        return "must be a hostname, not an IP address"
    if not _HOSTNAME.match(host):
        return "is not a valid hostname"
    if public and ("." not in host or host.lower().endswith(_PRIVATE_SUFFIXES)):
        return "must be a public domain name"
    return None
