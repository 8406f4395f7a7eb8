"""A mas server for somebody else's test-suite: `mas serve` in a child process, SQLite in a temp dir.

Used by the pytest plugin (`app.testing.pytest_plugin`), usable alone::

    with MasInstance(workdir, model="replay", cassette_dir=Path("cassettes")) as mas:
        mas.use_cassette("weather")
        client = anthropic.Anthropic(base_url=mas.url, api_key=mas.api_key)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

ModelMode = Literal["offline", "record", "replay", "record_missing"]
SandboxKind = Literal["local", "docker"]
MODEL_MODES: tuple[ModelMode, ...] = ("offline", "record", "replay", "record_missing")
START_TIMEOUT_SECONDS = 120.0
# The caller's own mas settings (a dev server's database, say) must not leak into the test server;
# only these pass through, for the record modes' upstream.
PASSED_THROUGH = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


class MasStartError(RuntimeError):
    pass


@dataclass
class MasInstance:
    workdir: Path
    model: ModelMode = "offline"
    cassette_dir: Path | None = None
    sandbox: SandboxKind = "local"
    upstream: str | None = None
    log_level: str = "warning"
    api_key: str = field(default_factory=lambda: "sk-mas-test-" + secrets.token_hex(12))
    port: int = 0
    generation: int = 0
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def uses_cassettes(self) -> bool:
        return self.model != "offline"

    def __enter__(self) -> MasInstance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """A server with an empty database (a new one per `generation`)."""
        self.port = _free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"mas-{self.generation}.log").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self._env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
        self._process = None
        if self.sandbox == "local":
            _stop_tool_servers(self._state_dir)
        else:  # session containers outlive their server on purpose (a restart adopts them): remove them
            subprocess.run(
                [sys.executable, "-m", "app", "sandbox", "clean"],
                env=self._env(),
                cwd=self.workdir,
                capture_output=True,
                timeout=300,
                check=False,
            )

    def restart_clean(self) -> None:
        """Stop, and start again on a new, empty database (the `mas_clean` marker)."""
        self.stop()
        self.generation += 1
        self.start()

    def use_cassette(self, name: str) -> None:
        response = httpx.put(
            f"{self.url}/v1/mas/cassette",
            json={"name": name},
            headers={"x-api-key": self.api_key},
            timeout=30,
        )
        if response.status_code != 200:
            raise MasStartError(f"could not switch to cassette {name!r}: {response.text}")

    @property
    def _state_dir(self) -> Path:
        return self.workdir / "sandbox"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAS_") and k not in PASSED_THROUGH}
        env.update({k: os.environ[k] for k in PASSED_THROUGH if k in os.environ})
        env.update(
            {
                "MAS_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / f'mas-{self.generation}.db'}",
                "MAS_API_KEYS": self.api_key,
                "MAS_MODEL_BACKEND": self.model,
                "MAS_SANDBOX_BACKEND": self.sandbox,
                "MAS_SANDBOX_INSTANCE": f"pytest-{os.getpid()}-{self.workdir.name}"[:60],
                "MAS_SANDBOX_STATE_DIR": str(self._state_dir),
                "MAS_LOG_LEVEL": self.log_level,
                # No warm pool: a test server's sessions may start cold, and a pool container being
                # filled while the server stops would outlive it.
                "MAS_SANDBOX_WARM_POOL": "0",
            }
        )
        if self.cassette_dir is not None:
            env["MAS_CASSETTE_DIR"] = str(self.cassette_dir)
        if self.upstream:
            env["MAS_ANTHROPIC_BASE_URL"] = self.upstream
        return env

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise MasStartError(f"mas exited with {self._process.returncode}: {self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise MasStartError(f"mas did not answer within {START_TIMEOUT_SECONDS:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.workdir / f"mas-{self.generation}.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_tool_servers(state_dir: Path) -> None:
    """The local sandbox's tool servers outlive the server that started them; end ours by pid."""
    for pid_file in state_dir.glob("local/*/*/server.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
