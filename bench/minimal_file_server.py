"""The floor for bench_files: the least an HTTP file server can do with the same requests.

    python bench/minimal_file_server.py STORE_DIR   # prints its port, then serves until killed

One connection at a time, ``Connection: close``. ``POST`` (one multipart part, as curl -F
sends it) skips the part's headers, receives the content into one reused buffer
(``recv_into``), hashes it (SHA-256) and writes it to a staging file, ``fsync``s and renames it to
its digest, and answers ``{"id": <digest>}``: mas's storage work without the ASGI server, a
multipart parser and the database.
``GET /<id>`` sends that file with ``os.sendfile`` (no copy through user space). Anything else
is a 404. Not a server for anything but this measurement.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

_BUFFER = 1024 * 1024


def _headers(conn: socket.socket) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """The request line, the headers (lower-cased names) and what arrived after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("the client left before its headers ended")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    line, *fields = head.split(b"\r\n")
    headers = {}
    for raw in fields:
        name, _, value = raw.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return line, headers, rest


def _answer(conn: socket.socket, status: str, body: bytes) -> None:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    conn.sendall(head.encode() + body)


def _store(conn: socket.socket, store: Path, headers: dict[bytes, bytes], rest: bytes) -> str:
    """The one part's content: the body less the part's headers and the closing delimiter."""
    _, _, boundary = headers[b"content-type"].partition(b"boundary=")
    closing = len(b"\r\n--" + boundary.strip(b'"') + b"--\r\n")
    while b"\r\n\r\n" not in rest:
        rest += conn.recv(65536)
    part_head, _, arrived = rest.partition(b"\r\n\r\n")
    size = int(headers[b"content-length"]) - len(part_head) - 4 - closing
    first = arrived[:size]
    closing -= len(arrived) - len(first)
    buffer = bytearray(_BUFFER)
    view = memoryview(buffer)
    digest = hashlib.sha256(first)
    fd, staged = tempfile.mkstemp(dir=store, prefix="stage-")
    try:
        os.write(fd, first)
        left = size - len(first)
        while left > 0:
            got = conn.recv_into(view, min(left, _BUFFER))
            if not got:
                raise ConnectionError("the client left mid-body")
            digest.update(view[:got])
            written = 0
            while written < got:
                written += os.write(fd, view[written:got])
            left -= got
        os.fsync(fd)
        while closing > 0 and (got := len(conn.recv(closing))):
            closing -= got
    finally:
        os.close(fd)
    name = digest.hexdigest()
    os.replace(staged, store / name)
    return name


def _send_file(conn: socket.socket, path: Path) -> None:
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % size)
        offset = 0
        while offset < size:
            offset += os.sendfile(conn.fileno(), handle.fileno(), offset, size - offset)


def _one(conn: socket.socket, store: Path) -> None:
    line, headers, rest = _headers(conn)
    method, target, _ = line.split(b" ", 2)
    name = target.decode("latin-1").strip("/")
    if method == b"POST":
        stored = _store(conn, store, headers, rest)
        _answer(conn, "200 OK", json.dumps({"id": stored}).encode())
    elif method == b"GET" and len(name) == 64 and (store / name).is_file():
        _send_file(conn, store / name)
    else:
        _answer(conn, "404 Not Found", b"{}")


def main() -> None:
    store = Path(sys.argv[1])
    store.mkdir(parents=True, exist_ok=True)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            with conn, contextlib.suppress(ConnectionError):
                _one(conn, store)


if __name__ == "__main__":
    main()
