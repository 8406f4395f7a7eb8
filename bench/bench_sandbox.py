"""Sandbox latency: bash tool round trip vs `docker exec`, and ensure() vs `docker run --rm`.

    .venv/bin/python bench/bench_sandbox.py [--calls 200] [--execs 50] [--starts 5]

Needs Docker and the base image (sandbox/build-base.sh). Cleans up its containers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from app.config import Settings
from app.sandbox import SandboxSpec, ToolRequest
from app.sandbox.docker_backend import DockerBackend


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed_command(args: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def bash_round_trips(backend: DockerBackend, session: str, calls: int) -> list[float]:
    request = ToolRequest("bash", {"command": "true"})
    for _ in range(10):  # warm-up
        await backend.execute(session, request)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await backend.execute(session, request)
        samples.append((time.perf_counter() - start) * 1000)
        assert not result.is_error, result
    return samples


async def ensure_times(backend: DockerBackend, runs: int, warm: bool) -> list[float]:
    """Cold: create + start + connect. Warm: adopt a started container from the pool (each run
    waits, untimed, until the pool has refilled)."""
    backend.pool.size = 2 if warm else 0
    image = backend.settings.sandbox_base_image
    samples = []
    for _ in range(runs):
        if warm:
            await backend.prewarm(SandboxSpec(env_id="env_bench"))
            for _ in range(600):  # bounded: at most 30 s for the pool to refill
                if backend.pool.ready(image):
                    break
                await asyncio.sleep(0.05)
        session = f"bench_{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        await backend.ensure(session, SandboxSpec(env_id="env_bench"))
        samples.append((time.perf_counter() - start) * 1000)
        await backend.remove(session)
    return samples


def row(label: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = percentiles(samples)
    print(f"  {label:<44} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={len(samples)})")
    return p50, p99


async def main(args: argparse.Namespace) -> None:
    instance = f"bench{uuid.uuid4().hex[:6]}"
    settings = Settings(
        sandbox_instance=instance,
        sandbox_state_dir=Path(tempfile.mkdtemp(prefix="mas-bench-")),
        sandbox_network=f"mas-{instance}",
    )
    backend = DockerBackend(settings)
    session = "bench_main"
    try:
        await backend.ensure(session, SandboxSpec(env_id="env_bench"))
        container = backend.naming.container(session)
        print("bash tool round trip (`true`):")
        ours, _ = row(
            "mas bash tool (one channel per session)", await bash_round_trips(backend, session, args.calls)
        )
        theirs, _ = row(
            "docker exec CONTAINER true", timed_command(["docker", "exec", container, "true"], args.execs)
        )
        print(f"  ratio p50: {ours / theirs:.3f}x docker exec")
        print("container start with a cached image:")
        ensure_p50, _ = row(
            "ensure(), cold: create + start + connect", await ensure_times(backend, args.starts, False)
        )
        warm_p50, _ = row(
            "ensure(), warm pool: adopt + connect", await ensure_times(backend, args.starts, True)
        )
        image = settings.sandbox_base_image
        run_p50, _ = row(
            "docker run --rm IMAGE true", timed_command(["docker", "run", "--rm", image, "true"], args.starts)
        )
        print(f"  ratio p50: cold {ensure_p50 / run_p50:.3f}x, warm {warm_p50 / run_p50:.3f}x docker run")
    finally:
        await backend.reap_orphans(set())
        await backend.close()
        network_rm = ["docker", "network", "rm", settings.sandbox_network]
        await asyncio.to_thread(subprocess.run, network_rm, capture_output=True, check=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--execs", type=int, default=50)
    parser.add_argument("--starts", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
