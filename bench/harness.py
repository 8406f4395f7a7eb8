"""What the issue-10 benchmarks share: a real `mas serve` process, PostgreSQL, /proc readings.

mas is driven only from outside, through its CLI (`mas serve`) and its public HTTP API, so these
benchmarks measure the same thing before and after the core is rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sk-mas-bench"
HEADERS = {
    "x-api-key": API_KEY,
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "managed-agents-2026-04-01",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mas_command() -> list[str]:
    """The installed `mas` entry point next to this interpreter (`python -m app` otherwise)."""
    script = Path(sys.executable).parent / "mas"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


# -- /proc readings --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads: aiosqlite runs one per connection)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS since start or the last `reset_peak_rss`), in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (Linux `clear_refs` 5); False where not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# -- a mas server ------------------------------------------------------------------------------------


@dataclass
class MasServer:
    """`mas serve` in its own process group, its own state directory and a free port."""

    workdir: Path
    database_url: str
    env: Mapping[str, str] = field(default_factory=dict)
    label: str = "mas"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.label}.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAS_", "ANTHROPIC_"))}
        env.update(
            {
                "MAS_DATABASE_URL": self.database_url,
                "MAS_API_KEYS": API_KEY,
                "MAS_MODEL_BACKEND": "offline",
                "MAS_SANDBOX_BACKEND": "local",
                "MAS_SANDBOX_STATE_DIR": str(self.workdir / "sandbox"),
                "MAS_SANDBOX_INSTANCE": f"bench-{self.label}-{self.port}",
                "MAS_LOG_LEVEL": "warning",
            }
        )
        env.update(self.env)
        return env

    def start(self, timeout: float = 90.0) -> MasServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # cwd = the work directory: `mas` reads a `.env` from its cwd, and this run must not.
        self.proc = subprocess.Popen(
            [*mas_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_healthy(self.url, self.proc, timeout, self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stop_tool_servers()

    def _stop_tool_servers(self) -> None:
        """The local sandbox's tool servers are detached (they outlive `mas serve` on purpose,
        as containers would): end the ones this server started, by their pid files."""
        for pid_file in (self.workdir / "sandbox").glob("local/*/*/server.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)

    def __enter__(self) -> MasServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not healthy after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def api(base_url: str, timeout: float = 120.0) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=HEADERS, timeout=timeout)


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    return response.json()


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_admin_url() -> str:
    """MAS_BENCH_POSTGRES_URL, MAS_TEST_POSTGRES_URL, or the worktree's own server, started with
    the project's script (it installs PostgreSQL from Debian's packages if missing)."""
    for name in ("MAS_BENCH_POSTGRES_URL", "MAS_TEST_POSTGRES_URL"):
        if os.environ.get(name):
            return os.environ[name]
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _admin_sql(admin_url: str, sql: str) -> None:
    import asyncpg  # only the PostgreSQL rows need it

    async def run() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database for one benchmark run (mas migrates it when it starts), dropped after."""
    name = f"mas_bench_{uuid.uuid4().hex[:8]}"
    _admin_sql(admin_url, f'CREATE DATABASE "{name}"')
    head, _, _ = admin_url.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        _admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database_url(kind: str, tmp: Path) -> Iterator[str]:
    """A database for one benchmark run: ``sqlite`` a file in ``tmp``, ``postgres`` a fresh
    database on the benchmarks' PostgreSQL (`postgres_database`)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    else:
        with postgres_database(postgres_admin_url()) as url:
            yield url


# -- fixtures through the API --------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You are a careful senior engineer working in a Python monorepo. Read the code before "
    "changing it, run the tests that cover what you touch, keep commits small, and explain what "
    "you did and why in a short summary at the end of each task."
)


def agent_body(name: str = "bench-coder") -> dict[str, Any]:
    """A realistic agent: a system prompt, the built-in toolset with an override, metadata."""
    return {
        "name": name,
        "model": "claude-sonnet-4-6",
        "system": SYSTEM_PROMPT,
        "description": "Fixes failing tests and reviews patches.",
        "tools": [
            {
                "type": "agent_toolset_20260401",
                "configs": [{"name": "web_fetch", "enabled": False}],
            }
        ],
        "metadata": {"team": "platform", "owner": "bench"},
    }


def environment_body(name: str = "bench-env") -> dict[str, Any]:
    return {
        "name": name,
        "config": {
            "type": "cloud",
            "networking": {"type": "unrestricted"},
            "packages": {"pip": ["pytest==8.3.3", "ruff"], "apt": ["ripgrep"]},
        },
        "metadata": {"team": "platform"},
    }


def message(text: str) -> dict[str, Any]:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


# -- reporting ---------------------------------------------------------------------------------------


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "app", "migrations"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() + (" (app modified)" if dirty.stdout.strip() else "")


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PHYS_PAGES") * PAGE_SIZE / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}, "
        f"load average at start {load}"
    )


def load_average() -> float:
    """The 1-minute load average: how busy the shared machine was (2 cores: above 2 means queueing)."""
    return os.getloadavg()[0]


def header(title: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"# {title}\n\nmachine: {machine()}\ndate: {now}; commit: {git_commit()}\n"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def num(value: float) -> str:
    """A figure with the precision that means something at its size."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def spread(values: list[float]) -> str:
    """min-max of repeated runs, the noise on this shared machine."""
    if len(values) < 2:
        return "-"
    return f"{num(min(values))}-{num(max(values))}"


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def dump_json(path: Path | None, data: Any) -> None:
    """Raw figures for whoever compares runs later."""
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=_plain))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)
