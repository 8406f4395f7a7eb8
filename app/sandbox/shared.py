"""Engine resources every session shares (the bridge networks): created once, found by id.

Docker does not enforce unique network names: two concurrent creates both succeed, and from then
on a lookup by name is "ambiguous". So creation happens under a lock that holds across threads
(a `threading.Lock`) and across processes on this host (an `flock` on a file in the state
directory), and the answer is an id. If duplicates exist anyway (another host, or an older mas),
every process picks the same one, the oldest, and the unused extras are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


@contextlib.contextmanager
def host_lock(lock_dir: Path, name: str) -> Iterator[None]:
    """Exclusive across the threads of this process and the processes sharing ``lock_dir``."""
    with _GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(name, threading.Lock())
    with thread_lock:
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / f"{name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _created(network: Any) -> tuple[str, str]:
    return (str(network.attrs.get("Created", "")), str(network.id))


def _named(client: docker.DockerClient, name: str) -> list[Any]:
    # The engine's name filter matches substrings: keep exact matches, oldest first.
    return sorted((n for n in client.networks.list(names=[name]) if n.name == name), key=_created)


def ensure_network(
    client: docker.DockerClient, lock_dir: Path, name: str, labels: dict[str, str], options: dict[str, str]
) -> str:
    """The id of the bridge network ``name``, creating it if no network of that name exists."""
    with host_lock(lock_dir, f"network-{name}"):
        found = _named(client, name)
        if not found:
            client.networks.create(
                name, driver="bridge", check_duplicate=True, labels=labels, options=options
            )
            found = _named(client, name)
        if not found:
            raise docker.errors.NotFound(f"network {name} vanished right after it was created")
        keep, *extras = found
        for extra in extras:  # duplicates: unused ones go, used ones stay (never chosen again)
            if (extra.attrs.get("Labels") or {}).get("mas.managed") == "1":
                with contextlib.suppress(docker.errors.APIError):
                    extra.remove()
        return str(keep.id)
