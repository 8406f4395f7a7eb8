"""What a limited session may reach: host names from its allow-list, on ports 80 and 443 only.
An unrestricted session that goes through the proxy (for its vault secrets) may reach any host on
any port, but no loopback or metadata address either.

Standard library only: this package runs inside the egress proxy container.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

HTTP_PORTS = frozenset({80, 443})
TLS_PORT = 443
# Cloud metadata services outside the link-local range (Alibaba Cloud; AWS over IPv6).
_METADATA = frozenset({ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")})


def normalise(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


@dataclass(frozen=True)
class Policy:
    exact: frozenset[str]
    suffixes: tuple[str, ...]  # ".example.com" for "*.example.com": one or more labels before it
    any_host: bool = False

    @classmethod
    def from_hosts(cls, hosts: list[str], any_host: bool = False) -> Policy:
        names = [normalise(host) for host in hosts if host.strip()]
        exact = frozenset(name for name in names if not name.startswith("*."))
        return cls(exact, tuple(name[1:] for name in names if name.startswith("*.")), any_host)

    @classmethod
    def load(cls, path: Path) -> Policy:
        config = json.loads(path.read_text())
        return cls.from_hosts(list(config["allowed_hosts"]), bool(config.get("any_host")))

    def ports(self, default: frozenset[int]) -> frozenset[int] | None:
        """The ports a request may go to (None: any)."""
        return None if self.any_host else default

    def allows(self, host: str) -> bool:
        """Names are matched, never addresses: an IP literal passes only if listed itself."""
        if self.any_host:
            return True
        name = normalise(host)
        if name in self.exact:
            return True
        if is_ip(name):
            return False
        return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in self.suffixes)


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(normalise(value))
    except ValueError:
        return False
    return True


def forbidden_address(value: str) -> bool:
    """An address no allowed name may resolve to: the proxy's own loopback, link-local (cloud
    metadata at 169.254.169.254), unspecified, multicast and known metadata addresses."""
    address = ipaddress.ip_address(normalise(value).split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in _METADATA or any(
        (address.is_loopback, address.is_link_local, address.is_unspecified, address.is_multicast)
    )
