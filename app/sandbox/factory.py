"""Choose the backend from settings."""

from __future__ import annotations

from app.config import Settings
from app.sandbox.interface import SandboxBackend


def create_backend(settings: Settings) -> SandboxBackend:
    if settings.sandbox_backend == "local":
        from app.sandbox.local_backend import LocalBackend

        return LocalBackend(settings)
    # Imported here so a local-backend process needs no Docker engine.
    from app.sandbox.docker_backend import DockerBackend

    return DockerBackend(settings)
