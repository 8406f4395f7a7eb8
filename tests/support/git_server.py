"""A real git smart-HTTP server for tests: `git http-backend` run as CGI behind a small threaded
HTTP server on loopback, serving bare repositories from a directory, with Basic authentication
(any user name, the password must be the token) like GitHub's `x-access-token`."""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BACKEND = "/usr/lib/git-core/git-http-backend"


def _authorized(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        _, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return password == token


def _handler(root: Path, token: str | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._cgi()

        def do_POST(self) -> None:
            self._cgi()

        def _cgi(self) -> None:
            if token is not None and not _authorized(self.headers.get("Authorization"), token):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "git",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            out = subprocess.run([BACKEND], input=body, env=env, capture_output=True, timeout=120).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.split(b"\r\n"):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def git_http_server(root: Path, token: str | None = None) -> Iterator[str]:
    """Serve the bare repositories under ``root``; yields the base URL (``http://127.0.0.1:PORT``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, token))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def make_repository(root: Path, owner: str, name: str) -> dict[str, str]:
    """A bare repository ``root/owner/name`` with two commits on ``main`` and a ``feature`` branch;
    returns the commit ids (``first``, ``main``, ``feature``)."""
    work = root / "_work" / owner / name
    work.mkdir(parents=True)

    def git(*args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        return subprocess.run(
            ["git", *args], cwd=work, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    (work / "README.md").write_text("first\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    first = git("rev-parse", "HEAD")
    (work / "README.md").write_text("second\n")
    git("commit", "-q", "-am", "second")
    main = git("rev-parse", "HEAD")
    git("checkout", "-q", "-b", "feature")
    (work / "FEATURE.md").write_text("feature\n")
    git("add", ".")
    git("commit", "-q", "-m", "feature")
    feature = git("rev-parse", "HEAD")
    git("checkout", "-q", "main")
    bare = root / owner / name
    bare.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return {"first": first, "main": main, "feature": feature}


def add_repository(root: Path, owner: str, name: str, files: dict[str, bytes]) -> str:
    """A bare repository ``root/owner/name`` whose one commit on ``main`` holds ``files`` (path ->
    bytes; a path ending in ``@`` is a symlink whose target is the bytes); returns the commit id."""
    work = root / "_work" / owner / name
    work.mkdir(parents=True)
    for path, data in files.items():
        if path.endswith("@"):
            (work / path[:-1]).parent.mkdir(parents=True, exist_ok=True)
            (work / path[:-1]).symlink_to(data.decode())
            continue
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "files"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, check=True, capture_output=True, text=True
    ).stdout.strip()
    bare = root / owner / name
    bare.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return commit
