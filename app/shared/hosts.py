"""Hostname checks shared by environment allow-lists and the web tools' domain lists."""

from __future__ import annotations

import ipaddress
import re

from publicsuffixlist import PublicSuffixList

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


# Metadata services outside the link-local range (Alibaba Cloud; AWS over IPv6).
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
)


def _public_suffixes() -> PublicSuffixList:
    global _PSL
    if _PSL is None:  # parsing the bundled list takes ~50 ms: only when an allow-list is checked
        _PSL = PublicSuffixList()
    return _PSL


_PSL: PublicSuffixList | None = None


def forbidden_address(value: str) -> str | None:
    """Why the IP literal ``value`` must never be reachable from a sandbox, or None.

    Loopback, link-local (cloud metadata at 169.254.169.254), unspecified, multicast and reserved
    addresses, and the known metadata addresses elsewhere. Private ranges stay allowed: on-prem
    services live there.
    """
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES:
        return "is a cloud metadata address"
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved"):
        if getattr(address, f"is_{kind}"):
            article = "an" if kind == "unspecified" else "a"
            return f"is {article} {kind.replace('_', '-')} address"
    return None


def allow_list_problem(value: str) -> str | None:
    """Why ``value`` cannot be an entry of a sandbox's egress allow-list, or None.

    On top of the hostname syntax: no address that reaches the host or the cloud's metadata
    service, no ``localhost``, and no wildcard over a public suffix (``*.com``, ``*.co.uk``,
    ``*.github.io``: the Public Suffix List as bundled by ``publicsuffixlist``).
    """
    problem = forbidden_address(value) or host_problem(value, wildcard=True)
    if problem:
        return problem
    wildcard = value.startswith("*.")
    host = value.removeprefix("*.").lower().rstrip(".")
    if _is_ip(host):
        return "must not be a wildcard over an IP address" if wildcard else None
    if host == "localhost" or host.endswith(".localhost"):
        return "is a loopback name"
    if wildcard and _public_suffixes().is_public(host):
        return f"is a wildcard over the public suffix {host!r}: name a registrable domain"
    return None
