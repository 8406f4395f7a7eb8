"""Docker networks and egress proxies: networking enforced from outside the session container."""

from __future__ import annotations

import contextlib
from typing import Any

import docker
import docker.errors
from docker.types import Mount

from app.config import Settings
from app.sandbox import egress
from app.sandbox.build_steps import Mirrors
from app.sandbox.containers import EGRESS_DIR, Naming, NetworkPlan, proxy_options
from app.sandbox.engine import Engine
from app.sandbox.interface import SandboxError, SandboxSpec
from app.sandbox.shared import ensure_network


class Networks:
    """Synchronous Docker calls; the backend runs them in engine threads (see engine.py)."""

    def __init__(self, engine: Engine, settings: Settings, naming: Naming) -> None:
        self._engine = engine
        self._settings = settings
        self._naming = naming
        self._ids: dict[str, str] = {}

    @property
    def _client(self) -> docker.DockerClient:
        return self._engine.client

    def plan(self, session_id: str, spec: SandboxSpec) -> NetworkPlan:
        if not egress.is_limited(spec.networking):
            # Inter-container traffic off: unrestricted sessions cannot reach each other.
            options = {"com.docker.network.bridge.enable_icc": "false"}
            return NetworkPlan(network=self._shared(self._settings.sandbox_network, options))
        egress_id = self._shared(self._settings.sandbox_egress_network, {})
        self._write_proxy_config(session_id, spec)
        self._create_proxy(session_id, egress_id)
        socket_dir = self._naming.session_dir(session_id) / "egress"
        return NetworkPlan(
            network="none",
            environment=egress.proxy_env(),
            mounts=[Mount(EGRESS_DIR, str(socket_dir), type="bind", read_only=True)],
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
        found = self._ids[name] = ensure_network(self._client, lock_dir, name, labels, options)
        return found

    def forget(self) -> None:
        """A network id was refused (someone removed the network): look it up again next time."""
        self._ids.clear()

    def _write_proxy_config(self, session_id: str, spec: SandboxSpec) -> None:
        mirrors = Mirrors.from_settings(self._settings).urls()
        hosts = egress.allowed_hosts(spec.networking, spec.mcp_hosts, mirrors)
        directory = self._naming.session_dir(session_id)
        (directory / "proxy").mkdir(parents=True, exist_ok=True)
        (directory / "proxy" / "tinyproxy.conf").write_text(egress.tinyproxy_conf())
        (directory / "proxy" / "filter").write_text(egress.filter_file(hosts))
        (directory / "egress").mkdir(exist_ok=True)
        (directory / "egress").chmod(0o777)  # the proxy runs as nobody and creates its socket here

    def _create_proxy(self, session_id: str, network_id: str) -> None:
        if self._find(self._naming.proxy(session_id)) is not None:
            return
        try:
            self._client.containers.create(
                **proxy_options(self._settings, self._naming, session_id, network_id)
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
        if proxy is not None and proxy.status != "running":
            proxy.start()

    def stop_proxy(self, session_id: str) -> None:
        proxy = self._find(self._naming.proxy(session_id))
        if proxy is not None:
            proxy.stop(timeout=2)

    def remove_proxy(self, session_id: str) -> None:
        proxy = self._find(self._naming.proxy(session_id))
        if proxy is not None:
            with contextlib.suppress(docker.errors.NotFound):
                proxy.remove(force=True)
