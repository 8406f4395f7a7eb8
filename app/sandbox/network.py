"""Docker networks and egress proxies: networking enforced from outside the session container."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import Mount

from app.config import Settings
from app.sandbox import egress, egress_bundle
from app.sandbox.build_steps import Mirrors
from app.sandbox.containers import CONFIG_NAME, EGRESS_DIR, Naming, NetworkPlan, proxy_options
from app.sandbox.egress_secrets import SecretFiles
from app.sandbox.engine import Engine
from app.sandbox.firewall import HostFirewall
from app.sandbox.interface import SandboxError, SandboxSpec
from app.sandbox.shared import ensure_network

_PROXY_START_TIMEOUT_S = 30.0
_NO_ICC = {"com.docker.network.bridge.enable_icc": "false"}


class Networks:
    """Synchronous Docker calls; the backend runs them in engine threads (see engine.py)."""

    def __init__(self, engine: Engine, settings: Settings, naming: Naming) -> None:
        self._engine = engine
        self._settings = settings
        self._naming = naming
        self._ids: dict[str, str] = {}
        self._firewall = HostFirewall(settings.sandbox_proxy_image, naming.instance)
        self.secrets = SecretFiles(settings, naming)

    @property
    def _client(self) -> docker.DockerClient:
        return self._engine.client

    def plan(self, session_id: str, spec: SandboxSpec) -> NetworkPlan:
        """Unrestricted: the shared bridge. Limited: no network, the proxy socket its one way out.
        With vault secrets, the proxy in either case (unrestricted: any host, through
        HTTP(S)_PROXY), placeholders in the environment and the proxy's CA trusted."""
        limited = egress.is_limited(spec.networking)
        # Inter-container traffic off: unrestricted sessions cannot reach each other.
        network = "none" if limited else self._shared(self._settings.sandbox_network, _NO_ICC)
        if not limited and not spec.secrets:
            return NetworkPlan(network=network)
        egress_id = self._shared(self._settings.sandbox_egress_network, {})
        self._write_proxy_config(session_id, spec, limited)
        environment = egress.proxy_env()
        socket_dir = self._naming.session_dir(session_id) / "egress"
        mounts = [Mount(EGRESS_DIR, str(socket_dir), type="bind", read_only=True)]
        site = None
        if spec.secrets:
            mounts.append(self.secrets.prepare(session_id, spec.secrets))
            environment = {**self.secrets.environment(session_id, spec.secrets), **environment}
            site = egress_bundle.ensure(self._settings)
        self._create_proxy(session_id, egress_id, site)
        return NetworkPlan(
            network=network,
            environment=environment,
            mounts=mounts,
            server_args=[
                "--proxy-socket",
                f"{EGRESS_DIR}/proxy.sock",
                "--proxy-port",
                str(egress.PROXY_PORT),
            ],
        )

    def _shared(self, name: str, options: dict[str, str]) -> str:
        """The shared network's id: looked up (or created) once per process, under the host lock."""
        known = self._ids.get(name)
        if known is not None:
            return known
        labels = {"mas.managed": "1", "mas.instance": self._naming.instance, "mas.role": "shared-network"}
        lock_dir = self._settings.sandbox_state_dir.resolve() / ".locks"
        found = ensure_network(self._client, lock_dir, name, labels, options)
        if self._settings.sandbox_host_firewall:
            self._firewall.isolate(self._client, self._client.networks.get(found))
        self._ids[name] = found
        return found

    def forget(self) -> None:
        """A network id was refused (someone removed the network): look it up again next time."""
        self._ids.clear()

    def _write_proxy_config(self, session_id: str, spec: SandboxSpec, limited: bool) -> None:
        mirrors = Mirrors.from_settings(self._settings).urls()
        hosts = egress.allowed_hosts(spec.networking, spec.mcp_hosts, mirrors) if limited else None
        directory = self._naming.session_dir(session_id)
        (directory / "proxy").mkdir(parents=True, exist_ok=True)
        (directory / "proxy" / CONFIG_NAME).write_text(egress.proxy_config(hosts))
        (directory / "egress").mkdir(exist_ok=True)
        (directory / "egress").chmod(0o777)  # the proxy runs as nobody and creates its socket here

    def _create_proxy(self, session_id: str, network_id: str, site: Path | None = None) -> None:
        if self._find(self._naming.proxy(session_id)) is not None:
            return
        try:
            self._client.containers.create(
                **proxy_options(self._settings, self._naming, session_id, network_id, site)
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"proxy image {self._settings.sandbox_proxy_image} not found; build it with "
                "sandbox/build-base.sh"
            ) from exc

    def _find(self, name: str) -> Any:
        try:
            return self._client.containers.get(name)
        except docker.errors.NotFound:
            return None

    def start_proxy(self, session_id: str) -> None:
        proxy = self._find(self._naming.proxy(session_id))
        if proxy is None or proxy.status == "running":
            return
        # The sandbox's first request must find the proxy listening: wait for its new socket.
        socket = self._naming.session_dir(session_id) / "egress" / "proxy.sock"
        socket.unlink(missing_ok=True)
        proxy.start()
        deadline = time.monotonic() + _PROXY_START_TIMEOUT_S
        while not socket.exists():
            if time.monotonic() > deadline:
                proxy.reload()
                logs = bytes(proxy.logs(tail=20)).decode(errors="replace").strip()
                raise SandboxError(f"the egress proxy of {session_id} did not start ({proxy.status}): {logs}")
            time.sleep(0.02)

    def stop_proxy(self, session_id: str) -> None:
        proxy = self._find(self._naming.proxy(session_id))
        if proxy is not None:
            proxy.stop(timeout=2)

    def remove_proxy(self, session_id: str) -> None:
        proxy = self._find(self._naming.proxy(session_id))
        if proxy is not None:
            with contextlib.suppress(docker.errors.NotFound):
                proxy.remove(force=True)
