"""Vault `environment_variable` secrets in real sandboxes: the container sees a placeholder, the
egress proxy puts the value in on the hosts both allow-lists allow. The upstream is an HTTPS echo
server of our own on the egress network (several names, a CA of its own given to the proxy with
MAS_SANDBOX_EGRESS_CA_BUNDLE) that prints every request it gets; no real internet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from app.sandbox import SandboxSpec
from app.sandbox.docker_backend import DockerBackend
from app.sandbox.egress_ca import EgressAuthority
from app.sandbox.interface import EgressSecret
from app.shared.environment_config import NetworkingConfig
from tests.sandbox.conftest import RUN, sandbox_settings
from tests.sandbox.support import bash, text
from tests.support import https_echo
from tests.support.https_echo import seen

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

SECRET = "vault-secret-9f8e7d6c5b4a"
NAMES = ["api.secret.test", "other.test", "blocked.test"]


@pytest.fixture(scope="module")
def upstream_ca(state_dir: Path) -> EgressAuthority:
    return https_echo.authority(state_dir / "secrets-upstream")


@pytest.fixture(scope="module")
def echo(
    docker_client: docker.DockerClient, docker_backend: DockerBackend, upstream_ca: EgressAuthority
) -> Iterator[Any]:
    """The HTTPS echo server, answering for NAMES on the egress network."""
    network = docker_backend.settings.sandbox_egress_network
    labels = {"mas.managed": "1", "mas.instance": RUN, "mas.role": "shared-network"}
    if not docker_client.networks.list(names=[network]):
        docker_client.networks.create(network, driver="bridge", labels=labels, check_duplicate=True)
    name = f"mas-{RUN}-secrets-echo"
    container = https_echo.start(
        docker_client, upstream_ca, network, NAMES, name, {"mas.instance": RUN, "mas.role": "test-server"}
    )
    yield container
    container.remove(force=True)


@pytest.fixture(scope="module")
async def backend(
    docker_client: docker.DockerClient, state_dir: Path, upstream_ca: EgressAuthority
) -> AsyncIterator[DockerBackend]:
    settings = sandbox_settings(state_dir, sandbox_egress_ca_bundle=https_echo.ca_file(upstream_ca))
    backend = DockerBackend(settings)
    yield backend
    await backend.close()


def secret(**changes: Any) -> EgressSecret:
    values: dict[str, Any] = {"name": "API_TOKEN", "value": SECRET, "hosts": ("api.secret.test",)}
    return EgressSecret(**{**values, **changes})


async def session(backend: DockerBackend, networking: NetworkingConfig, *secrets: EgressSecret) -> str:
    sid = f"sesn_{uuid.uuid4().hex[:12]}"
    await backend.ensure(sid, SandboxSpec(env_id="env_sec", networking=networking, secrets=secrets))
    return sid


def curl(url: str, *args: str) -> str:
    return f"curl -sS -m 20 {' '.join(args)} {url}"


UNRESTRICTED: NetworkingConfig = {"type": "unrestricted"}


async def test_the_value_goes_only_to_the_credentials_hosts_and_never_into_the_sandbox(
    backend: DockerBackend, echo: Any
) -> None:
    sid = await session(backend, UNRESTRICTED, secret())
    try:
        out = await bash(backend, sid, 'echo "$API_TOKEN"')
        placeholder = text(out).strip()
        assert placeholder.startswith("mas_placeholder_") and SECRET not in placeholder
        header = '-H "Authorization: Bearer $API_TOKEN"'
        result = await bash(backend, sid, curl("https://api.secret.test/allowed", header))
        assert text(result).strip() == "ok"  # the sandbox trusts the proxy's certificate
        assert seen(echo, "/allowed")["headers"]["Authorization"] == f"Bearer {SECRET}"
        # Another host: a plain tunnel (the sandbox would see the real site's certificate).
        await bash(backend, sid, curl("https://other.test/elsewhere", "-k", header))
        assert seen(echo, "/elsewhere")["headers"]["Authorization"] == f"Bearer {placeholder}"
        # Python's own client (HTTPS_PROXY, SSL_CERT_FILE) verifies and gets it substituted too.
        code = (
            "import os, urllib.request as u; r = u.Request('https://api.secret.test/python', "
            "headers={'X-Key': os.environ['API_TOKEN']}); print(u.urlopen(r, timeout=20).read())"
        )
        assert "ok" in text(await bash(backend, sid, f'python3 -c "{code}"'))
        assert seen(echo, "/python")["headers"]["X-Key"] == SECRET
        # Nowhere in the container: environment, files, any process's environment.
        search = f"grep -rls {SECRET} /etc /root /tmp /workspace /run /mnt /proc/[0-9]*/environ; env"
        listing = text(await bash(backend, sid, search))
        assert SECRET not in listing and f"API_TOKEN={placeholder}" in listing
        proxy = backend.client.containers.get(backend.naming.proxy(sid))
        assert SECRET not in bytes(proxy.logs()).decode()
    finally:
        await backend.remove(sid)


async def test_both_unrestricted_the_proxy_mints_for_any_host(backend: DockerBackend, echo: Any) -> None:
    sid = await session(backend, UNRESTRICTED, secret(hosts=None))
    try:
        # No name known ahead: the proxy mints other.test's certificate with its intermediate CA.
        out = await bash(backend, sid, curl("https://other.test/minted", '-H "X-Key: $API_TOKEN"'))
        assert text(out).strip() == "ok"
        assert seen(echo, "/minted")["headers"]["X-Key"] == SECRET
    finally:
        await backend.remove(sid)


async def test_limited_networking_and_the_body(backend: DockerBackend, echo: Any) -> None:
    networking: NetworkingConfig = {"type": "limited", "allowed_hosts": ["api.secret.test", "other.test"]}
    body_only = secret(hosts=None, header=False, body=True)
    blocked = secret(name="BLOCKED_TOKEN", hosts=("blocked.test",))
    sid = await session(backend, networking, body_only, blocked)
    try:
        args = ['-H "X-Key: $API_TOKEN"', '--data "key=$API_TOKEN&n=1"']
        assert text(await bash(backend, sid, curl("https://other.test/body", *args))).strip() == "ok"
        request = seen(echo, "/body")
        assert request["body"] == f"key={SECRET}&n=1"
        assert request["headers"]["X-Key"].startswith("mas_placeholder_")  # header not enabled
        # The credential's only host is outside the environment's policy: refused there.
        out = await bash(backend, sid, curl("https://blocked.test/never", '-H "X: $BLOCKED_TOKEN"'))
        assert "403" in text(out)
    finally:
        await backend.remove(sid)


async def test_rotation_and_archival_reach_the_running_sandbox(backend: DockerBackend, echo: Any) -> None:
    sid = await session(backend, UNRESTRICTED, secret())
    try:
        header = '-H "Authorization: Bearer $API_TOKEN"'
        spec = SandboxSpec(env_id="env_sec", networking=UNRESTRICTED, secrets=(secret(value="rotated-1"),))
        await backend.ensure(sid, spec)  # what the next tool step does
        out = text(await bash(backend, sid, curl("https://api.secret.test/rotated", header)))
        assert out.strip() == "ok", out  # what curl said, when the request did not go through
        assert seen(echo, "/rotated")["headers"]["Authorization"] == "Bearer rotated-1"
        await backend.ensure(sid, SandboxSpec(env_id="env_sec", networking=UNRESTRICTED, secrets=()))
        # Nothing to substitute any more: a plain tunnel (-k: the sandbox does not know the test CA).
        await bash(backend, sid, curl("https://api.secret.test/archived", "-k", header))
        assert seen(echo, "/archived")["headers"]["Authorization"].startswith("Bearer mas_placeholder_")
    finally:
        await backend.remove(sid)
