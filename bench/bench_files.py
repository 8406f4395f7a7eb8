"""Files in and out: a 100 MB upload and download (curl as the client) next to copying the same file
on local disk, and session create -> first tool result with one 10 MB file resource next to the
same without resources (real Docker sandboxes). Baselines are taken in the same run, alternating.

    .venv/bin/python bench/bench_files.py [--size-mb 100] [--resource-mb 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import docker
import docker.errors
from harness import API_KEY, MasServer, header, load_average, median, spread

TARGET_RATIO = 0.5
POOL_REFILL_S = 4.0


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its own threads; /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Cpu:
    """CPU seconds spent by the server process and by this process around each measured step:
    on a shared machine the wall clock mostly measures the wait for a core, the CPU does not."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.samples: dict[str, list[float]] = {"copy": [], "upload": [], "download": []}

    def measure(self, what: str, fn: Callable[[], Any], *, server: bool) -> tuple[float, Any]:
        before = _cpu_seconds(self.server_pid) if server else time.process_time()
        seconds, value = _timed(fn)
        after = _cpu_seconds(self.server_pid) if server else time.process_time()
        self.samples[what].append(after - before)
        return seconds, value


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * 1024 * 1024))
            handle.write(chunk)
            left -= len(chunk)


def _one_round(
    client: anthropic.Anthropic, work: Path, source: Path, i: int, cpu: _Cpu
) -> tuple[float, str, float, float]:
    """One local copy, one upload and one download of ``source``: (upload s, file id, copy s, download s)."""
    target, fetched = work / f"copy-{i}.bin", work / f"download-{i}.bin"
    copy_s = cpu.measure("copy", lambda: shutil.copyfile(source, target), server=False)[0]
    target.unlink()
    upload_s, uploaded = cpu.measure("upload", lambda: _upload(client, source), server=True)
    down_s = cpu.measure("download", lambda: _download(client, uploaded, fetched), server=True)[0]
    if fetched.stat().st_size != source.stat().st_size:
        raise RuntimeError("download size differs from the upload")
    fetched.unlink()
    return upload_s, uploaded, copy_s, down_s


def _url(client: anthropic.Anthropic, path: str) -> str:
    return str(client.base_url).rstrip("/") + path


def _curl(*args: str) -> str:
    """curl (C) moves the bytes: a Python client would take the CPU the server needs (2 cores)."""
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", f"x-api-key: {API_KEY}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"curl {args[-1]}: {done.stderr} {done.stdout[:500]}")
    return done.stdout


def _upload(client: anthropic.Anthropic, source: Path) -> str:
    """Multipart, streamed from disk, as `curl -F` sends it."""
    # No `Expect: 100-continue` (curl adds it to large bodies; SDK clients do not send it).
    body = _curl(
        "-H", "Expect:", "-F", f"file=@{source};type=application/octet-stream", _url(client, "/v1/files")
    )
    return str(json.loads(body)["id"])


def _download(client: anthropic.Anthropic, file_id: str, target: Path) -> None:
    _curl("-o", str(target), _url(client, f"/v1/files/{file_id}/content"))


def throughput(
    client: anthropic.Anthropic, work: Path, size_mb: int, repeats: int, server_pid: int
) -> dict[str, Any]:
    source = work / "source.bin"
    _random_file(source, size_mb * 1024 * 1024)
    copies, uploads, downloads = [], [], []
    cpu = _Cpu(server_pid)
    for i in range(repeats):
        seconds, uploaded, copy_s, down_s = _one_round(client, work, source, i, cpu)
        copies.append(copy_s)
        uploads.append(seconds)
        downloads.append(down_s)
        client.beta.files.delete(uploaded)
    mb = float(size_mb)
    copy_s, up_s, down_s = median(copies), median(uploads), median(downloads)
    return {
        "size_mb": size_mb,
        "copy_mb_s": mb / copy_s,
        "upload_mb_s": mb / up_s,
        "download_mb_s": mb / down_s,
        "upload_ratio": copy_s / up_s,
        "download_ratio": copy_s / down_s,
        "samples": {"copy": copies, "upload": uploads, "download": downloads},
        "cpu_s": {what: median(values) for what, values in cpu.samples.items()},
        "cpu_samples": cpu.samples,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--resource-mb", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mas-bench-files-"))
    env = {
        "MAS_STORAGE_DIR": str(work / "storage"),
        "MAS_FILES_UPLOADS_DOWNLOADABLE": "true",
        "MAS_SANDBOX_BACKEND": "docker",
        "MAS_SANDBOX_WARM_POOL": "1",
    }
    server = MasServer(work / "server", f"sqlite+aiosqlite:///{work}/mas.db", env=env, label="files")
    print(header("bench_files"), f"load {load_average():.1f}", sep="\n")
    try:
        server.start()
        with anthropic.Anthropic(base_url=server.url, api_key=API_KEY, max_retries=0, timeout=600) as client:
            moved = throughput(client, work, args.size_mb, args.repeats, server.pid)
            started = first_result(client, work, args.resource_mb, args.repeats)
    finally:
        server.stop()
        _remove_containers(server.environment()["MAS_SANDBOX_INSTANCE"])
        shutil.rmtree(work, ignore_errors=True)
    verdict = "met" if min(moved["upload_ratio"], moved["download_ratio"]) >= TARGET_RATIO else "MISSED"
    print(
        f"{args.size_mb} MB file: local copy {moved['copy_mb_s']:.0f} MB/s; "
        f"upload {moved['upload_mb_s']:.0f} MB/s ({moved['upload_ratio']:.2f}x, "
        f"{spread(moved['samples']['upload'])}); "
        f"download {moved['download_mb_s']:.0f} MB/s ({moved['download_ratio']:.2f}x, "
        f"{spread(moved['samples']['download'])}); target >= {TARGET_RATIO}x: {verdict}"
    )
    cpu = moved["cpu_s"]
    print(
        f"CPU per {args.size_mb} MB (medians; load-independent): local copy {cpu['copy']:.3f} s; "
        f"server upload {cpu['upload']:.3f} s ({cpu['copy'] / cpu['upload']:.2f}x); "
        f"server download {cpu['download']:.3f} s ({cpu['copy'] / cpu['download']:.2f}x)"
    )
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
