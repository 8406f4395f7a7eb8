"""Host firewall rules that keep sandboxes away from the host's own services.

A container on a Docker bridge reaches every address of the host through the bridge's gateway
(the mas API, PostgreSQL, anything bound to 0.0.0.0), and through the host's routing the cloud
metadata service at 169.254.169.254. Docker has no option against either, so mas installs
iptables rules for each of its bridges, in two chains of its own:

- ``MAS-SANDBOX-IN`` (jumped to from ``INPUT``): from a mas bridge, only replies to connections
  the host opened; anything else is rejected.
- ``MAS-SANDBOX-FWD`` (jumped to from Docker's ``DOCKER-USER``): from a mas bridge, no connection
  to a port published on the host (DNAT) and nothing to the link-local range.

The rules go in through the engine: a short-lived helper container in the host's network
namespace with ``NET_ADMIN`` only (no privileged mode) runs ``iptables`` from the proxy image, in
the variant (nft or legacy) whose ``DOCKER-USER`` chain exists, i.e. the one Docker uses. So the
same code works for `mas serve` on the host and for mas in a container with the Docker socket.
The script is idempotent (``-C`` before each insert) and prunes the rules of bridges that no
longer exist. IPv4 only: mas's networks have no IPv6.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import docker
import docker.errors

from app.sandbox.interface import SandboxError

log = logging.getLogger(__name__)

_BRIDGE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # a Linux interface name
SCRIPT = r"""
set -eu
IPT=iptables-nft
if ! iptables-nft -n -L DOCKER-USER >/dev/null 2>&1 && iptables-legacy -n -L DOCKER-USER >/dev/null 2>&1; then
  IPT=iptables-legacy
fi
ipt() { "$IPT" -w 30 "$@"; }
ensure() { chain=$1; shift; ipt -C "$chain" "$@" 2>/dev/null || ipt -A "$chain" "$@"; }
ipt -N MAS-SANDBOX-IN 2>/dev/null || true
ipt -N MAS-SANDBOX-FWD 2>/dev/null || true
ipt -C INPUT -j MAS-SANDBOX-IN 2>/dev/null || ipt -I INPUT -j MAS-SANDBOX-IN
if ipt -n -L DOCKER-USER >/dev/null 2>&1; then
  ipt -C DOCKER-USER -j MAS-SANDBOX-FWD 2>/dev/null || ipt -I DOCKER-USER -j MAS-SANDBOX-FWD
else
  echo "no DOCKER-USER chain: forwarding rules not hooked" >&2
fi
for br in "$@"; do
  ipt -C MAS-SANDBOX-IN -i "$br" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN 2>/dev/null ||
    ipt -I MAS-SANDBOX-IN -i "$br" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
  ensure MAS-SANDBOX-IN -i "$br" -j REJECT
  ensure MAS-SANDBOX-FWD -i "$br" -m conntrack --ctstate DNAT -j REJECT
  ensure MAS-SANDBOX-FWD -i "$br" -d 169.254.0.0/16 -j REJECT
done
for chain in MAS-SANDBOX-IN MAS-SANDBOX-FWD; do
  ipt -S "$chain" | grep -e '^-A .* -i ' | while read -r rule; do
    br=$(echo "$rule" | sed -n 's/.* -i \([^ ]*\) .*/\1/p')
    if [ ! -e "/sys/class/net/$br" ]; then ipt $(echo "$rule" | sed 's/^-A /-D /') || true; fi
  done
done
"""


def bridge_name(network: Any) -> str:
    """The Linux bridge behind a Docker bridge network."""
    options = network.attrs.get("Options") or {}
    return str(options.get("com.docker.network.bridge.name") or f"br-{network.id[:12]}")


class HostFirewall:
    """Installs the rules once per bridge per process (again after a restart: rules are not
    persistent across host reboots, and the script is cheap and idempotent)."""

    def __init__(self, image: str, instance: str) -> None:
        self._image = image
        self._instance = instance
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def isolate(self, client: docker.DockerClient, network: Any) -> None:
        bridge = bridge_name(network)
        if bridge in self._done:
            return
        with self._lock:
            if bridge not in self._done:
                self._install(client, bridge)
                self._done.add(bridge)

    def _install(self, client: docker.DockerClient, bridge: str) -> None:
        if not _BRIDGE.match(bridge):
            raise SandboxError(f"unexpected bridge name {bridge!r}")
        try:
            client.containers.run(
                self._image,
                ["sh", "-c", SCRIPT, "mas-firewall", bridge],
                entrypoint=[],
                user="0:0",
                cap_drop=["ALL"],
                cap_add=["NET_ADMIN", "NET_RAW"],
                network_mode="host",
                remove=True,
                labels={"mas.managed": "1", "mas.instance": self._instance, "mas.role": "firewall"},
            )
        except docker.errors.ContainerError as exc:
            stderr = bytes(exc.stderr or b"").decode(errors="replace").strip()
            raise SandboxError(
                f"cannot install the host firewall rules for {bridge}: {stderr or exc}; set "
                "MAS_SANDBOX_HOST_FIREWALL=false only where sandboxes may reach the host"
            ) from exc
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(f"image {self._image} not found; build it with sandbox/build-base.sh") from exc
        log.info("host firewall rules in place for %s", bridge)
