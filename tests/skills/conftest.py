"""The Docker loop server of the mount tests (tests/files), for skills in sessions' sandboxes."""

from tests.files.conftest import docker_sdk, docker_server, git_server

__all__ = ["docker_sdk", "docker_server", "git_server"]
