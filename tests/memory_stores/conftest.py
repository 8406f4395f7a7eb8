"""The Docker loop server of the mount tests (tests/files), for memory stores in sessions."""

from tests.files.conftest import docker_sdk, docker_server, git_server

__all__ = ["docker_sdk", "docker_server", "git_server"]
