"""An HTTPS server of our own on a Docker network, answering for several names with a
certificate from a test CA, that prints every request it gets (path, headers, body) as a JSON
line: the upstream the egress proxy's secret substitution is checked against."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import docker
from docker.types import Mount

from app.sandbox.egress_ca import EgressAuthority

IMAGE = "mas-sandbox-base:bookworm"
SERVER = """
import http.server, json, ssl
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = {"path": self.path, "headers": dict(self.headers), "body": body.decode("latin-1")}
        print(json.dumps(seen), flush=True)
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b"ok\\n")
    do_GET = do_POST
    def log_message(self, *a): pass
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain("/certs/server.pem")
server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), H)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"""


def authority(directory: Path) -> EgressAuthority:
    """The test CA; its certificate (``ca_file``) is what MAS_SANDBOX_EGRESS_CA_BUNDLE names."""
    return EgressAuthority(directory, "test-upstream")


def ca_file(ca: EgressAuthority) -> Path:
    ca.certificate_pem()
    return ca.directory / "ca.pem"


def start(
    client: docker.DockerClient,
    ca: EgressAuthority,
    network: str,
    names: list[str],
    name: str,
    labels: dict[str, str],
) -> Any:
    """The started server container (the caller removes it)."""
    certs = ca.directory.parent / "echo-certs"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "server.pem").write_bytes(ca.leaf(names))
    container = client.containers.create(
        IMAGE,
        ["python3", "-c", SERVER],
        name=name,
        labels=labels,
        network=network,
        mounts=[Mount("/certs", str(certs), type="bind", read_only=True)],
        networking_config={network: client.api.create_endpoint_config(aliases=names)},
    )
    container.start()
    deadline = time.monotonic() + 30
    while b"ready" not in container.logs():
        if time.monotonic() > deadline:
            raise AssertionError(f"the HTTPS echo server did not start: {container.logs()!r}")
        time.sleep(0.05)
    return container


def seen(container: Any, marker: str, within: float = 30.0) -> dict[str, Any]:
    """The request the server got for the path containing ``marker``. The server prints it before
    answering, but the engine copies a container's output to its log on its own time: a line can
    reach the log after the client has its answer, so the log is read again for a while."""
    deadline = time.monotonic() + within
    while True:
        for line in bytes(container.logs()).decode().splitlines():
            if line.startswith("{") and marker in (entry := json.loads(line))["path"]:
                return dict(entry)
        if time.monotonic() > deadline:
            raise AssertionError(f"the upstream got no request for {marker}")
        time.sleep(0.1)
