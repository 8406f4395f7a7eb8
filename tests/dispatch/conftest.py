"""The dispatcher's tests use the sandbox suite's Docker fixtures (engine, base images, state dir)."""

from tests.sandbox.conftest import docker_client, state_dir  # noqa: F401
