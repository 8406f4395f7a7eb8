"""Naming, labels and the hardened run options of session containers and their proxies."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.types import Mount

from app.config import Settings
from app.sandbox import disk
from app.sandbox.interface import MemoryMount

SOCKET_DIR = "/run/mas"
SOCKET_NAME = "tool.sock"
SERVER_DIR = "/opt/mas/toolserver"
WORKSPACE = "/workspace"
OUTPUTS = "/mnt/session/outputs"
UPLOADS = "/mnt/session/uploads"
MEMORY = "/mnt/memory"
SPILL_DIR = "/tmp/mas-tool-output"

# Docker's default set minus MKNOD, NET_RAW, SETFCAP, SETPCAP, SYS_CHROOT and AUDIT_WRITE:
# enough for apt (drops to _apt), dpkg (chown) and pip run as root inside the sandbox.
CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"]
_LOGS = {"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}}


EGRESS_DIR = "/run/mas-egress"
PROXY_DIR = "/opt/mas/egress"
PROXY_CONFIG_DIR = "/etc/mas-proxy"
CONFIG_NAME = "allow.json"
SECRETS_NAME = "secrets.json"
UPSTREAM_CA_NAME = "upstream-ca.pem"
SITE_DIR = "/opt/mas/egress-site"
_NOBODY = (65534, 65534)


def proxy_owner() -> tuple[int, int]:
    """Who the egress proxy runs as: nobody when mas is root (which can hand it its secrets file),
    otherwise mas's own user (never root in the proxy either way)."""
    return _NOBODY if os.geteuid() == 0 else (os.getuid(), os.getgid())


@dataclass(frozen=True)
class NetworkPlan:
    network: str
    environment: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    server_args: list[str] = field(default_factory=list)


class Naming:
    """Names and labels of one mas instance's Docker objects (tests use a unique instance)."""

    def __init__(self, settings: Settings) -> None:
        self.instance = settings.sandbox_instance
        self.disk_quota = bool(settings.sandbox_disk_mb)
        self.state_root = settings.sandbox_state_dir.resolve() / self.instance

    def labels(self, session_id: str, role: str) -> dict[str, str]:
        return {
            "mas.managed": "1",
            "mas.instance": self.instance,
            "mas.session": session_id,
            "mas.role": role,
        }

    def filters(self, role: str | None = None, session_id: str | None = None) -> dict[str, list[str]]:
        wanted = ["mas.managed=1", f"mas.instance={self.instance}"]
        wanted += [f"mas.role={role}"] if role else []
        wanted += [f"mas.session={session_id}"] if session_id else []
        return {"label": wanted}

    def container(self, session_id: str) -> str:
        return f"mas-{self.instance}-{session_id}"

    def session_of(self, container_name: str) -> str | None:
        """The session (or warm-pool key) a container of this instance belongs to, from its name."""
        prefix = f"mas-{self.instance}-"
        if not container_name.lstrip("/").startswith(prefix):
            return None
        return container_name.lstrip("/")[len(prefix) :].removesuffix("-proxy")

    def proxy(self, session_id: str) -> str:
        return f"mas-{self.instance}-{session_id}-proxy"

    def session_dir(self, session_id: str) -> Path:
        return self.state_root / session_id

    def _owner_dir(self, session_id: str) -> Path:
        """The directory the session's container was created with: a container adopted from the
        warm pool keeps its pool key's (``run`` then links there; with a disk quota ``run`` of an
        own container links into its own disk instead)."""
        session_dir = self.session_dir(session_id)
        run = session_dir / "run"
        if run.is_symlink():
            target = Path(os.readlink(run))
            if target.parent != disk.mount_point(session_dir):
                return target.parent
        return session_dir

    def uploads_dir(self, session_id: str) -> Path:
        """Host side of /mnt/session/uploads (a read-only bind mount)."""
        return self._owner_dir(session_id) / "uploads"

    def outputs_dir(self, session_id: str) -> Path:
        """Host side of /mnt/session/outputs: on the session's disk when there is a quota."""
        owner = self._owner_dir(session_id)
        return disk.mount_point(owner) / "outputs" if self.disk_quota else owner / "outputs"

    def memory_dir(self, session_id: str) -> Path:
        """Host side of /mnt/memory: on the session's disk when there is a quota (the agent's
        writes there count against it)."""
        owner = self._owner_dir(session_id)
        return disk.mount_point(owner) / "memory" if self.disk_quota else owner / "memory"

    def socket_path(self, session_id: str) -> Path:
        return self.session_dir(session_id) / "run" / SOCKET_NAME


def resource_limits(
    memory_mb: int, pids: int, cpus: float
) -> dict[str, Any]:  # JSON boundary: docker-py kwargs
    return {
        "mem_limit": f"{memory_mb}m",
        "memswap_limit": f"{memory_mb}m",  # no swap: the limit is the limit
        "nano_cpus": int(cpus * 1e9),
        "pids_limit": pids,
        "security_opt": ["no-new-privileges:true"],
        "log_config": _LOGS,
    }


def disk_options(settings: Settings, session_dir: Path) -> dict[str, Any]:  # JSON boundary: docker-py kwargs
    """With a quota, every writable place is on the session's disk and the rest is read-only."""
    if not settings.sandbox_disk_mb:
        return {}
    mount = disk.mount_point(session_dir)
    return {
        "read_only": True,
        "tmpfs": {"/run": "size=16m,mode=0755"},
        "mounts": [
            Mount(target, str(mount / name), type="bind") for target, name in disk.DIRECTORIES.items()
        ],
    }


def memory_mounts(naming: Naming, session_id: str, memory: Sequence[MemoryMount]) -> list[Mount]:
    """/mnt/memory read-only, each store's directory below it (read-only for read_only stores)."""
    if not memory:
        return []
    root = naming.memory_dir(session_id)
    return [
        Mount(MEMORY, str(root), type="bind", read_only=True),
        *(
            Mount(f"{MEMORY}/{m.slug}", str(root / m.slug), type="bind", read_only=m.read_only)
            for m in memory
        ),
    ]


def sandbox_options(
    settings: Settings,
    naming: Naming,
    session_id: str,
    image: str,
    plan: NetworkPlan,
    memory: Sequence[MemoryMount] = (),
) -> dict[str, Any]:  # JSON boundary: keyword arguments of docker-py's containers.create
    run_dir = (naming.session_dir(session_id) / "run").resolve()  # on the session's disk, if any
    quota_options = disk_options(settings, naming.session_dir(session_id))
    server = settings.sandbox_assets_dir.resolve() / "toolserver"
    command = [
        "python3",
        SERVER_DIR,
        "--socket",
        f"{SOCKET_DIR}/{SOCKET_NAME}",
        "--workspace",
        WORKSPACE,
        "--spill-dir",
        SPILL_DIR,
        "--make-dirs",
        OUTPUTS,
        "--watch-runaways",  # fork bombs die between calls too, not only when the next call starts
        *plan.server_args,
    ]
    return {
        "image": image,
        "name": naming.container(session_id),
        "command": command,
        "entrypoint": [],
        "working_dir": WORKSPACE,
        "hostname": "sandbox",
        "labels": naming.labels(session_id, "sandbox"),
        "environment": {"HOME": "/root", **plan.environment},
        # "none": a limited session has loopback only; its proxy socket is its one way out.
        **({"network_mode": "none"} if plan.network == "none" else {"network": plan.network}),
        "cap_drop": ["ALL"],
        "cap_add": CAPABILITIES,
        # The tool server is mounted, not baked in: any python3 image works as a base.
        "mounts": [
            Mount(SOCKET_DIR, str(run_dir), type="bind"),
            Mount(SERVER_DIR, str(server), type="bind", read_only=True),
            Mount(UPLOADS, str(naming.session_dir(session_id) / "uploads"), type="bind", read_only=True),
            # With a disk quota the outputs are on the session's disk (its mounts below).
            *(
                []
                if quota_options
                else [Mount(OUTPUTS, str(naming.session_dir(session_id) / "outputs"), type="bind")]
            ),
            *plan.mounts,
            *quota_options.pop("mounts", []),
            *memory_mounts(naming, session_id, memory),
        ],
        **quota_options,
        **resource_limits(settings.sandbox_memory_mb, settings.sandbox_pids, settings.sandbox_cpus),
    }


def proxy_options(
    settings: Settings, naming: Naming, session_id: str, network_id: str, site: Path | None = None
) -> dict[str, Any]:  # JSON boundary: keyword arguments of docker-py's containers.create
    """``site``: the bundled ``cryptography`` (egress_bundle.py) of a proxy that substitutes secrets."""
    session_dir = naming.session_dir(session_id)
    code = settings.sandbox_assets_dir.resolve() / "egress"
    bundle = [Mount(SITE_DIR, str(site), type="bind", read_only=True)] if site is not None else []
    return {
        "image": settings.sandbox_proxy_image,
        "name": naming.proxy(session_id),
        "entrypoint": [],
        "command": [
            "python3",
            PROXY_DIR,
            "--config",
            f"{PROXY_CONFIG_DIR}/{CONFIG_NAME}",
            "--socket",
            f"{EGRESS_DIR}/proxy.sock",
            "--secrets",
            f"{PROXY_CONFIG_DIR}/{SECRETS_NAME}",
            "--upstream-ca",
            f"{PROXY_CONFIG_DIR}/{UPSTREAM_CA_NAME}",
            *(["--site", SITE_DIR] if site is not None else []),
        ],
        "labels": naming.labels(session_id, "proxy"),
        "network": network_id,  # by id: a name can be ambiguous
        "user": "{}:{}".format(*proxy_owner()),
        "read_only": True,
        "cap_drop": ["ALL"],
        "mounts": [
            Mount(PROXY_DIR, str(code), type="bind", read_only=True),
            Mount(PROXY_CONFIG_DIR, str(session_dir / "proxy"), type="bind", read_only=True),
            Mount(EGRESS_DIR, str(session_dir / "egress"), type="bind"),
            *bundle,
        ],
        **resource_limits(64, 64, 0.5),
    }
