"""Limited networking enforced outside the container, against a web server of our own that
answers for several hostnames (network aliases) on the egress network. No real internet."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.types import Mount

from app.sandbox import SandboxSpec
from app.sandbox.docker_backend import DockerBackend
from app.sandbox.firewall import HostFirewall, bridge_name
from app.shared.environment_config import NetworkingConfig
from tests.sandbox.conftest import RUN
from tests.sandbox.support import bash, call, http_server, text

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

ALIASES = [
    "allowed.test",
    "api.wild.test",
    "deep.api.wild.test",
    "wild.test",
    "blocked.test",
    "mcp.test",
    "pypi.org",
]
SERVER = """
import http.server, ssl, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a second request on a connection would be answered
    def do_GET(self):
        body = f"hello {self.headers['Host']}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):  # read the body first: closing on unread bytes resets the connection
        if self.headers.get("Transfer-Encoding") == "chunked":
            while size := int(self.rfile.readline(), 16):
                self.rfile.read(size + 2)
            self.rfile.readline()
        else:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()
    def log_message(self, *a): pass
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain("/certs/cert.pem", "/certs/key.pem")  # one certificate, whatever the SNI
for port, secure in ((443, True), (8443, True), (8080, False)):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), H)
    if secure:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
"""
LIMITED: NetworkingConfig = {"type": "limited", "allowed_hosts": ["allowed.test", "*.wild.test"]}


@pytest.fixture(scope="module")
def web_server(
    docker_client: docker.DockerClient, docker_backend: DockerBackend, state_dir: Path
) -> Iterator[str]:
    """The server's IP address on the egress network: HTTP on 80 and 8080, HTTPS on 443 and 8443."""
    settings = docker_backend.settings
    certs = state_dir / "websrv-certs"
    certs.mkdir(exist_ok=True)
    key_and_cert = ["-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem")]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=t",
            *key_and_cert,
        ],
        check=True,
        capture_output=True,
    )
    (certs / "key.pem").chmod(0o644)
    labels = {"mas.managed": "1", "mas.instance": RUN, "mas.role": "shared-network"}
    with contextlib.suppress(docker.errors.APIError):
        docker_client.networks.create(
            settings.sandbox_egress_network, driver="bridge", labels=labels, check_duplicate=True
        )
    network = docker_client.networks.get(settings.sandbox_egress_network)
    container = docker_client.containers.create(
        settings.sandbox_base_image,
        ["python3", "-c", SERVER],
        name=f"mas-{RUN}-websrv",
        labels={"mas.instance": RUN, "mas.role": "test-server"},
        network=network.name,
        mounts=[Mount("/certs", str(certs), type="bind", read_only=True)],
        networking_config={network.name: docker_client.api.create_endpoint_config(aliases=ALIASES)},
    )
    container.start()
    yield _wait_for_ip(container, network.name)
    container.remove(force=True)


def _wait_for_ip(container: Any, network: str) -> str:
    for _ in range(100):
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        logs = container.logs()
        if address and not logs:
            time.sleep(0.3)  # the servers bind right after start
            return str(address)
        time.sleep(0.05)
    raise AssertionError(f"test web server did not start: {container.logs()!r}")


async def _session(
    backend: DockerBackend, networking: NetworkingConfig, mcp_hosts: list[str] | None = None
) -> str:
    sid = f"sesn_{uuid.uuid4().hex[:12]}"
    await backend.ensure(sid, SandboxSpec(env_id="env_net", networking=networking, mcp_hosts=mcp_hosts or []))
    return sid


@pytest.fixture(scope="module")
async def limited(docker_backend: DockerBackend, web_server: str) -> AsyncIterator[str]:
    sid = await _session(docker_backend, LIMITED)
    yield sid
    await docker_backend.remove(sid)


def curl(args: str) -> str:
    return f"curl -sS -m 5 -o /dev/null -w '%{{http_code}}' {args}"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://allowed.test/", "200"),
        ("http://ALLOWED.test/", "200"),
        ("http://api.wild.test/", "200"),
        ("http://deep.api.wild.test/", "200"),
        ("http://wild.test/", "403"),
        ("http://blocked.test/", "403"),
        ("http://allowed.test.blocked.test/", "403"),
        ("http://allowed.test@blocked.test/", "403"),
    ],
)
async def test_proxy_allows_only_listed_hosts(
    docker_backend: DockerBackend, limited: str, url: str, status: str
) -> None:
    assert text(await bash(docker_backend, limited, curl(url))).endswith(status)


async def test_https_tunnels_only_to_port_443(docker_backend: DockerBackend, limited: str) -> None:
    tunnel = await bash(docker_backend, limited, curl("-k https://allowed.test/"))
    wild = await bash(docker_backend, limited, curl("-k https://deep.api.wild.test/"))
    other_port = await bash(docker_backend, limited, curl("-k https://allowed.test:8443/"))
    blocked = await bash(docker_backend, limited, curl("-k https://blocked.test/"))
    assert (text(tunnel), text(wild)) == ("200", "200")
    assert other_port.is_error and "403" in text(other_port)
    assert blocked.is_error and "403" in text(blocked)


async def test_plain_http_only_to_ports_80_and_443_with_a_matching_host(
    docker_backend: DockerBackend, limited: str
) -> None:
    other_port = await bash(docker_backend, limited, curl("http://allowed.test:8080/"))
    wrong_host = await bash(docker_backend, limited, curl("-H 'Host: blocked.test' http://allowed.test/"))
    with_port = await bash(docker_backend, limited, curl("-H 'Host: allowed.test:80' http://allowed.test/"))
    two_hosts = await raw(
        docker_backend, limited, "GET http://allowed.test/ HTTP/1.1|Host: allowed.test|Host: blocked.test||"
    )
    assert text(other_port).endswith("403")  # tinyproxy forwarded this one: any port of an allowed host
    assert text(wrong_host).endswith("403") and two_hosts.startswith("HTTP/1.1 403")
    assert text(with_port) == "200"


async def test_a_request_smuggled_behind_a_body_never_leaves(
    docker_backend: DockerBackend, limited: str
) -> None:
    """One request per connection, relayed by its own framing: the bytes after it are dropped."""
    first = "POST http://allowed.test/ HTTP/1.1|Host: allowed.test|Content-Length: 2||hi"
    second = "GET http://blocked.test/ HTTP/1.1|Host: blocked.test||"
    chunked = "POST http://allowed.test/ HTTP/1.1|Host: allowed.test|Transfer-Encoding: chunked||2|hi|0||"
    for payload in (first + second, chunked + second):
        reply = await raw(docker_backend, limited, payload)
        assert "hello allowed.test" in reply and "blocked.test" not in reply, reply


async def raw(backend: DockerBackend, sid: str, payload: str) -> str:
    """What the proxy answers to ``payload`` (``|`` for CRLF), sent as is from inside the sandbox."""
    script = (
        "import socket; s = socket.create_connection(('127.0.0.1', 3128)); "
        f"s.sendall({payload!r}.replace('|', '\\r\\n').encode()); s.shutdown(socket.SHUT_WR); "
        "print(b''.join(iter(lambda: s.recv(65536), b'')).decode())"
    )
    return text(await bash(backend, sid, f'python3 -c "{script}"'))


async def test_a_tunnel_cannot_carry_another_sites_tls_name(
    docker_backend: DockerBackend, limited: str
) -> None:
    """`--connect-to` opens the tunnel to an allowed host and speaks TLS for another one (SNI)."""
    escapes = [
        "--connect-to blocked.test:443:allowed.test:443 https://blocked.test/",
        "--connect-to deep.api.wild.test:443:api.wild.test:443 https://deep.api.wild.test/",
    ]
    for escape in escapes:
        result = await bash(docker_backend, limited, curl(f"-k {escape}"))
        assert result.is_error and "unrecognized name" in text(result).lower(), text(result)
    plain_tunnel = await bash(docker_backend, limited, curl("-p http://allowed.test:443/"))
    assert plain_tunnel.is_error  # a tunnel carries TLS or nothing
    matching = await bash(
        docker_backend,
        limited,
        curl("-k --connect-to allowed.test:443:allowed.test:443 https://allowed.test/"),
    )
    assert text(matching) == "200"


async def test_no_way_around_the_proxy(docker_backend: DockerBackend, limited: str, web_server: str) -> None:
    via_proxy_by_ip = await bash(docker_backend, limited, curl(f"http://{web_server}/"))
    assert text(via_proxy_by_ip).endswith("403")
    for port in (80, 443, 8080):
        direct = await bash(docker_backend, limited, curl(f"--noproxy '*' http://{web_server}:{port}/"))
        assert direct.is_error
    host_header = await bash(docker_backend, limited, curl("-H 'Host: allowed.test' http://blocked.test/"))
    assert text(host_header).endswith("403")
    interfaces = await bash(docker_backend, limited, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert text(interfaces) == "lo"  # no route anywhere, the host included
    host = await bash(docker_backend, limited, "timeout 2 bash -c '</dev/tcp/172.17.0.1/22'")
    assert host.is_error and "unreachable" in text(host)
    resolve = await bash(docker_backend, limited, "getent hosts allowed.test || echo unresolved")
    assert text(resolve) == "unresolved"
    spoofed = await bash(
        docker_backend,
        limited,
        curl(f"--noproxy '*' --resolve allowed.test:80:{web_server} http://allowed.test/"),
    )
    assert spoofed.is_error


async def test_web_fetch_obeys_the_policy(docker_backend: DockerBackend, limited: str) -> None:
    allowed = await call(docker_backend, limited, "web_fetch", url="http://allowed.test/")
    assert allowed.content[0]["source"]["data"] == "hello allowed.test"
    blocked = await call(docker_backend, limited, "web_fetch", url="http://blocked.test/")
    assert blocked.is_error and "HTTP 403" in text(blocked)


async def test_package_managers_and_mcp_servers_open_their_hosts(
    docker_backend: DockerBackend, web_server: str
) -> None:
    networking: NetworkingConfig = {
        "type": "limited",
        "allowed_hosts": [],
        "allow_package_managers": True,
        "allow_mcp_servers": True,
    }
    sid = await _session(docker_backend, networking, mcp_hosts=["https://mcp.test/sse"])
    try:
        registry = await bash(docker_backend, sid, curl("http://pypi.org/simple/"))  # our server's alias
        mcp = await bash(docker_backend, sid, curl("http://mcp.test/"))
        other = await bash(docker_backend, sid, curl("http://allowed.test/"))
    finally:
        await docker_backend.remove(sid)
    assert (text(registry), text(mcp)) == ("200", "200")
    assert text(other).endswith("403")


async def test_empty_allow_list_denies_everything(docker_backend: DockerBackend, web_server: str) -> None:
    sid = await _session(
        docker_backend,
        {"type": "limited", "allowed_hosts": [], "allow_mcp_servers": False},
        mcp_hosts=["mcp.test"],
    )
    try:
        results = [
            text(await bash(docker_backend, sid, curl(f"http://{host}/")))
            for host in ("mcp.test", "pypi.org")
        ]
    finally:
        await docker_backend.remove(sid)
    assert all(result.endswith("403") for result in results)


async def test_unrestricted_sessions_cannot_reach_each_other(docker_backend: DockerBackend) -> None:
    first, second = f"sesn_{uuid.uuid4().hex[:12]}", f"sesn_{uuid.uuid4().hex[:12]}"
    try:
        for sid in (first, second):
            await docker_backend.ensure(sid, SandboxSpec(env_id="env_net"))
        await bash(docker_backend, first, "(python3 -m http.server 8000 >/dev/null 2>&1 &) ; sleep 0.5")
        address = text(await bash(docker_backend, first, "hostname -I")).split()[0]
        probe = await bash(docker_backend, second, curl(f"--connect-timeout 2 http://{address}:8000/"))
    finally:
        for sid in (first, second):
            await docker_backend.remove(sid)
    assert probe.is_error


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def _gateway(client: docker.DockerClient, network: str) -> str:
    return str(client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"])


def _host_addresses() -> list[str]:
    """Every IPv4 address of this machine but loopback (the bridges' gateways among them)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    addresses = [line.split()[3].split("/")[0] for line in out.stdout.splitlines()]
    return [address for address in addresses if not address.startswith("127.")]


async def test_sandboxes_cannot_reach_the_hosts_services(
    docker_backend: DockerBackend, docker_client: docker.DockerClient, web_server: str
) -> None:
    """A server bound to 0.0.0.0 on the host (as the mas API or PostgreSQL may be) is out of reach
    from an unrestricted sandbox on every host address, and from a limited session's proxy."""
    settings = docker_backend.settings
    sid = await _session(docker_backend, {"type": "unrestricted"})
    egress_gateway = _gateway(docker_client, settings.sandbox_egress_network)
    limited = await _session(docker_backend, {"type": "limited", "allowed_hosts": [egress_gateway]})
    try:
        with http_server({"/": ("text/plain", b"host secret")}) as port:
            assert await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/") == b"host secret"  # it is up
            targets = [_gateway(docker_client, settings.sandbox_network), *_host_addresses()]
            direct = [await bash(docker_backend, sid, curl(f"http://{ip}:{port}/")) for ip in targets]
            via_proxy = await bash(docker_backend, limited, curl(f"http://{egress_gateway}:{port}/"))
            metadata = await bash(docker_backend, sid, curl("http://169.254.169.254/latest/meta-data/"))
    finally:
        await docker_backend.remove(sid)
        await docker_backend.remove(limited)
    for result in direct:  # rejected at once (curl's exit code 7), not left to time out
        assert result.is_error and text(result).endswith("[exit code 7]"), text(result)
    assert text(via_proxy).endswith("403") or text(via_proxy).endswith("502"), text(via_proxy)
    assert metadata.is_error and text(metadata).endswith("[exit code 7]"), text(metadata)


def test_host_firewall_rules_are_installed_once(docker_backend: DockerBackend) -> None:
    """Installing again (a new process, a second network) adds no duplicate rule."""
    settings = docker_backend.settings
    network = docker_backend.client.networks.get(settings.sandbox_network)
    before = _rules()
    HostFirewall(settings.sandbox_proxy_image, RUN).isolate(docker_backend.client, network)
    after = _rules()
    bridge = bridge_name(network)
    assert after == before
    assert sum(f"-i {bridge} " in rule for rule in after) == 4


def _rules() -> list[str]:
    chains = ["INPUT", "DOCKER-USER", "MAS-SANDBOX-IN", "MAS-SANDBOX-FWD"]
    return [
        line
        for chain in chains
        for line in subprocess.run(
            ["iptables", "-S", chain], capture_output=True, text=True
        ).stdout.splitlines()
    ]
