"""Files in and out: a 100 MB upload and download next to copying the same file on local disk, and
session create -> first tool result with one 10 MB file resource next to the same without
resources (real Docker sandboxes). Baselines are taken in the same run, alternating.

The transfers run with two clients (curl, and a lean client: ``sendfile`` up, one reused buffer
down) against two servers: mas, and ``minimal_file_server.py``, the least an HTTP file server can
do with the same requests (receive, SHA-256, write, fsync, rename; ``sendfile`` down). The
minimal server is the floor: what this machine allows at all, measured in the same run.

    .venv/bin/python bench/bench_files.py [--size-mb 100] [--resource-mb 10] [--repeats 3] [--no-sessions]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import docker
import docker.errors
from harness import API_KEY, MasServer, header, load_average, median, spread

TARGET_RATIO = 0.5
POOL_REFILL_S = 4.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all its threads; /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU of the finished child processes this process waited for (the curl runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * 1024 * 1024))
            handle.write(chunk)
            left -= len(chunk)


# -- the servers: mas, and the least an HTTP file server can do (the floor) -------------------------


@dataclass(frozen=True)
class Target:
    """Where a client uploads and downloads, and the server process whose CPU is read."""

    name: str
    base: str
    upload_path: str
    download_path: str  # with {id}
    pid: int

    def upload_url(self) -> str:
        return self.base + self.upload_path

    def download_url(self, file_id: str) -> str:
        return self.base + self.download_path.format(id=file_id)


@contextlib.contextmanager
def minimal_server(store: Path) -> Iterator[Target]:
    """bench/minimal_file_server.py in its own process (its CPU is read like mas's)."""
    script = Path(__file__).with_name("minimal_file_server.py")
    proc = subprocess.Popen([sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Target("minimal", f"http://127.0.0.1:{port}", "/", "/{id}", proc.pid)
    finally:
        proc.kill()
        proc.wait()


# -- the clients: curl, and a lean client (sendfile up, one reused buffer down) ----------------------


def _curl(*args: str) -> str:
    """curl (C) moves the bytes."""
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", f"x-api-key: {API_KEY}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"curl {args[-1]}: {done.stderr} {done.stdout[:500]}")
    return done.stdout


def curl_upload(target: Target, source: Path) -> str:
    """Multipart, streamed from disk, as `curl -F` sends it."""
    # No `Expect: 100-continue` (curl adds it to large bodies; SDK clients do not send it).
    body = _curl("-H", "Expect:", "-F", f"file=@{source};type=application/octet-stream", target.upload_url())
    return str(json.loads(body)["id"])


def curl_download(target: Target, file_id: str, path: Path) -> None:
    _curl("-o", str(path), target.download_url(file_id))


_BOUNDARY = "mas-bench-files-boundary"
_BUFFER = 1024 * 1024


def _connect(url: str) -> tuple[socket.socket, str]:
    parts = urlsplit(url)
    conn = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
    return conn, parts.path


def _response_head(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise RuntimeError("the server closed the connection before its headers ended")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    headers = {}
    for field_line in fields:
        name, _, value = field_line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(line.split(" ")[1]), headers, rest


def lean_upload(target: Target, source: Path) -> str:
    """The same multipart request curl -F makes, with the file's bytes sent by ``sendfile`` and
    the response read whole (Connection: close)."""
    conn, path = _connect(target.upload_url())
    opening = (
        f'--{_BOUNDARY}\r\ncontent-disposition: form-data; name="file"; filename="{source.name}"\r\n'
        "content-type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{_BOUNDARY}--\r\n".encode()
    length = len(opening) + source.stat().st_size + len(closing)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {API_KEY}\r\nconnection: close\r\n"
        f"content-type: multipart/form-data; boundary={_BOUNDARY}\r\ncontent-length: {length}\r\n\r\n"
    ).encode()
    with conn, source.open("rb") as handle:
        conn.sendall(head + opening)
        conn.sendfile(handle)
        conn.sendall(closing)
        status, _, body = _response_head(conn)
        while more := conn.recv(65536):
            body += more
    if status != 200:
        raise RuntimeError(f"upload: {status} {body[:500]!r}")
    return str(json.loads(body)["id"])


def lean_download(target: Target, file_id: str, path: Path) -> None:
    """GET into one reused 1 MiB buffer, written to ``path`` as it arrives."""
    conn, url_path = _connect(target.download_url(file_id))
    buffer = bytearray(_BUFFER)
    view = memoryview(buffer)
    with conn:
        request = (
            f"GET {url_path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {API_KEY}\r\nconnection: close\r\n\r\n"
        )
        conn.sendall(request.encode())
        status, headers, first = _response_head(conn)
        if status != 200 or "content-length" not in headers:
            raise RuntimeError(f"download: {status} {headers}")
        left = int(headers["content-length"]) - len(first)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, first)
            while left > 0:
                got = conn.recv_into(view, min(left, _BUFFER))
                if not got:
                    raise RuntimeError("the server closed the connection mid-body")
                written = 0
                while written < got:
                    written += os.write(fd, view[written:got])
                left -= got
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Client:
    name: str
    upload: Callable[[Target, Path], str]
    download: Callable[[Target, str, Path], None]
    in_process: bool  # its CPU is this thread's (lean) or the waited-for children's (curl)


CLIENTS = (
    Client("curl", curl_upload, curl_download, in_process=False),
    Client("lean", lean_upload, lean_download, in_process=True),
)


# -- measuring ---------------------------------------------------------------------------------------


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)


def _measured(samples: Samples, target: Target, client: Client, fn: Callable[..., Any], *args: Any) -> Any:
    """Wall seconds, and the CPU each side spent: on a shared machine the wall clock mostly
    measures the wait for a core, the CPU does not."""
    server_before = _cpu_seconds(target.pid)
    client_before = time.thread_time() if client.in_process else _children_cpu()
    start = time.perf_counter()
    value = fn(target, *args)
    samples.wall.append(time.perf_counter() - start)
    samples.server_cpu.append(_cpu_seconds(target.pid) - server_before)
    samples.client_cpu.append((time.thread_time() if client.in_process else _children_cpu()) - client_before)
    return value


def _copy(source: Path, target: Path, samples: Samples) -> None:
    start, cpu = time.perf_counter(), time.thread_time()
    shutil.copyfile(source, target)
    samples.wall.append(time.perf_counter() - start)
    samples.client_cpu.append(time.thread_time() - cpu)
    target.unlink()


def _idle_cpu_per_second(pid: int, seconds: float = 3.0) -> float:
    """A server's CPU while nothing is asked of it (mas's embedded worker polls for work): part
    of every transfer's server CPU, in proportion to its wall time."""
    before = _cpu_seconds(pid)
    time.sleep(seconds)
    return (_cpu_seconds(pid) - before) / seconds


def throughput(
    targets: list[Target], work: Path, size_mb: int, repeats: int, delete: Callable[[Target, str], None]
) -> dict[str, Any]:
    """Per repeat: one local copy, then for each server and client one upload and one download
    (the order of servers and clients rotates between repeats)."""
    source = work / "source.bin"
    _random_file(source, size_mb * 1024 * 1024)
    idle = {target.name: _idle_cpu_per_second(target.pid) for target in targets}
    copy = Samples()
    moved: dict[tuple[str, str, str], Samples] = {}
    pairs = [(t, c) for t in targets for c in CLIENTS]
    for i in range(repeats):
        _copy(source, work / "copy.bin", copy)
        for target, client in pairs[i % len(pairs) :] + pairs[: i % len(pairs)]:
            fetched = work / f"download-{target.name}-{client.name}.bin"
            up = moved.setdefault((target.name, client.name, "upload"), Samples())
            down = moved.setdefault((target.name, client.name, "download"), Samples())
            file_id = _measured(up, target, client, client.upload, source)
            _measured(down, target, client, client.download, file_id, fetched)
            if fetched.stat().st_size != source.stat().st_size:
                raise RuntimeError(f"{target.name}/{client.name}: download size differs from the upload")
            fetched.unlink()
            delete(target, file_id)
    mb = float(size_mb)
    copy_s = median(copy.wall)
    rows = []
    for (server, client_name, direction), samples in moved.items():
        wall = median(samples.wall)
        rows.append(
            {
                "server": server,
                "client": client_name,
                "direction": direction,
                "mb_s": mb / wall,
                "ratio": copy_s / wall,
                "server_cpu_s": median(samples.server_cpu),
                "client_cpu_s": median(samples.client_cpu),
                "samples": dataclasses.asdict(samples),
            }
        )
    return {
        "size_mb": size_mb,
        "copy_mb_s": mb / copy_s,
        "copy_cpu_s": median(copy.client_cpu),
        "copy_samples": dataclasses.asdict(copy),
        "rows": rows,
        "idle_cpu_per_s": idle,
    }


def _first_tool_result(
    client: anthropic.Anthropic, resources: list[dict[str, Any]], ids: dict[str, str]
) -> float:
    command = "ls -l /mnt/session/uploads | wc -l"
    start = time.perf_counter()
    session = client.beta.sessions.create(
        agent=ids["agent"],
        environment_id=ids["environment"],
        resources=resources,  # type: ignore[arg-type]
    )
    with client.beta.sessions.events.stream(session.id) as stream:
        client.beta.sessions.events.send(
            session.id,
            events=[
                {
                    "type": "user.message",
                    "content": [{"type": "text", "text": "/tool bash " + json.dumps({"command": command})}],
                }
            ],
        )
        for event in stream:
            if event.type == "agent.tool_result":
                elapsed = time.perf_counter() - start
                break
        else:
            raise RuntimeError("the stream ended before a tool result")
    return elapsed


def first_result(client: anthropic.Anthropic, work: Path, resource_mb: int, repeats: int) -> dict[str, Any]:
    blob = work / "resource.bin"
    _random_file(blob, resource_mb * 1024 * 1024)
    upload = client.beta.files.upload(file=blob)
    agent = client.beta.agents.create(
        name="bench-files", model="claude-sonnet-4-6", tools=[{"type": "agent_toolset_20260401"}]
    )
    environment = client.beta.environments.create(name="bench-files")
    ids = {"agent": agent.id, "environment": environment.id}
    _first_tool_result(client, [], ids)  # warm: image and pool ready before measuring
    plain: list[float] = []
    with_file: list[float] = []
    resource: list[dict[str, Any]] = [{"type": "file", "file_id": upload.id}]
    for i in range(repeats):
        # Steady state: the warm pool refilled before each start; the order alternates.
        runs = [([], plain), (resource, with_file)]
        for resources, samples in runs if i % 2 == 0 else reversed(runs):
            time.sleep(POOL_REFILL_S)
            samples.append(_first_tool_result(client, resources, ids))
    return {
        "resource_mb": resource_mb,
        "none_s": median(plain),
        "with_file_s": median(with_file),
        "ratio": median(with_file) / median(plain),
        "samples": {"none": plain, "with_file": with_file},
    }


def _remove_containers(instance: str) -> None:
    with contextlib.suppress(docker.errors.DockerException):
        engine = docker.from_env()
        for container in engine.containers.list(all=True, filters={"label": f"mas.instance={instance}"}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        engine.close()


def _report(moved: dict[str, Any]) -> None:
    print(
        f"{moved['size_mb']} MB file, local copy (shutil.copyfile): {moved['copy_mb_s']:.0f} MB/s "
        f"({spread(moved['copy_samples']['wall'])} s), CPU {moved['copy_cpu_s']:.3f} s"
    )
    idle = ", ".join(f"{name} {rate:.3f} s" for name, rate in moved["idle_cpu_per_s"].items())
    print(f"server CPU per second idle (included in the server CPU below, per second of wall): {idle}")
    print("server   client  direction  MB/s   vs copy  (wall s)       server CPU  client CPU")
    order = sorted(
        moved["rows"], key=lambda r: (r["server"] != "mas", r["client"], r["direction"] != "upload")
    )
    for row in order:
        print(
            f"{row['server']:<8} {row['client']:<7} {row['direction']:<10} {row['mb_s']:>5.0f}  "
            f"{row['ratio']:>5.2f}x   ({spread(row['samples']['wall']):<12})  "
            f"{row['server_cpu_s']:>6.3f} s    {row['client_cpu_s']:>6.3f} s"
        )
    for client in CLIENTS:
        ratios = [r["ratio"] for r in moved["rows"] if r["server"] == "mas" and r["client"] == client.name]
        verdict = "met" if min(ratios) >= TARGET_RATIO else "MISSED"
        floor = [r["ratio"] for r in moved["rows"] if r["server"] == "minimal" and r["client"] == client.name]
        print(
            f"target (mas, {client.name}) >= {TARGET_RATIO}x both ways: {verdict} "
            f"(worst {min(ratios):.2f}x; the minimal server's worst with this client: {min(floor):.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--resource-mb", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sessions", action="store_true", help="only the transfers (no Docker)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mas-bench-files-"))
    env = {
        "MAS_STORAGE_DIR": str(work / "storage"),
        "MAS_FILES_UPLOADS_DOWNLOADABLE": "true",
        "MAS_SANDBOX_BACKEND": "local" if args.no_sessions else "docker",
        "MAS_SANDBOX_WARM_POOL": "0" if args.no_sessions else "1",
    }
    server = MasServer(work / "server", f"sqlite+aiosqlite:///{work}/mas.db", env=env, label="files")
    print(header("bench_files"), f"load {load_average():.1f}", sep="\n")
    started: dict[str, Any] | None = None
    try:
        server.start()
        with (
            anthropic.Anthropic(base_url=server.url, api_key=API_KEY, max_retries=0, timeout=600) as client,
            minimal_server(work / "minimal") as floor,
        ):
            mas = Target("mas", server.url, "/v1/files", "/v1/files/{id}/content", server.pid)

            def delete(target: Target, file_id: str) -> None:
                if target is mas:
                    client.beta.files.delete(file_id)
                else:
                    (work / "minimal" / file_id).unlink()

            moved = throughput([mas, floor], work, args.size_mb, args.repeats, delete)
            if not args.no_sessions:
                started = first_result(client, work, args.resource_mb, args.repeats)
    finally:
        server.stop()
        if not args.no_sessions:
            _remove_containers(server.environment()["MAS_SANDBOX_INSTANCE"])
        shutil.rmtree(work, ignore_errors=True)
    _report(moved)
    print(f"load at the end {load_average():.1f}")
    if started is not None:
        print(
            f"session create -> first tool result: no resources {started['none_s']:.2f} s "
            f"({spread(started['samples']['none'])}); one {args.resource_mb} MB file "
            f"{started['with_file_s']:.2f} s ({spread(started['samples']['with_file'])}); "
            f"ratio {started['ratio']:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps({"throughput": moved, "first_result": started}, indent=2))


if __name__ == "__main__":
    main()
