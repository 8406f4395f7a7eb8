"""The one way mas talks to the Docker engine: off the event loop, bounded, timed, errors typed.

Every engine call goes through `Engine.run`: a dedicated thread pool bounds how many calls are in
flight (Docker 20.10's network API is fragile under many concurrent operations), each call has a
deadline (a hung engine costs a session a `session.error`, never the API process), and whatever
the SDK raises becomes an `EngineError` that says which operation failed. The engine's state
(`unavailable`) is remembered until a call succeeds again, so health checks can report it.

`fault` is the seam tests use to inject engine failures and hangs into real calls.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import docker
import docker.errors
import requests.exceptions

from app.sandbox.interface import SandboxError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Called with the operation's name in the engine thread before each call: raise to inject an
# error, block to inject a hang.
Fault = Callable[[str], None]


class EngineError(SandboxError):
    """The Docker engine refused or failed an operation."""


class EngineUnavailable(EngineError):
    """The Docker engine did not answer in time, or could not be reached at all."""


class Engine:
    def __init__(
        self, connect: Callable[[], docker.DockerClient], *, timeout_s: float, concurrency: int
    ) -> None:
        self._connect = connect
        self._client: docker.DockerClient | None = None
        self.timeout_s = timeout_s
        self.fault: Fault | None = None
        self.unavailable: str | None = None  # why the last call failed to reach the engine
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="docker-engine")
        self._state = threading.Lock()
        self._connecting = threading.Lock()

    @property
    def client(self) -> docker.DockerClient:
        """The SDK client, connected on first use: inside an engine call, so an engine that is
        down or hung when mas starts delays nothing but the first sandbox."""
        with self._connecting:
            if self._client is None:
                self._client = self._connect()
            return self._client

    async def run(self, what: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` (blocking SDK code) in an engine thread within the deadline.

        The deadline covers the wait for a free engine thread too: when the engine hangs, calls
        queue behind the hung ones and time out instead of piling up threads.
        """
        return await self.run_within(what, self.timeout_s, fn, *args, **kwargs)

    async def run_within(
        self, what: str, seconds: float, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``run`` with a deadline of its own: for a call whose work grows with its input (copying
        a large tree into a container), never less than the engine's deadline."""
        seconds = max(seconds, self.timeout_s)
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, what, fn, *args, **kwargs)
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, call), seconds)
        except TimeoutError:
            message = f"the Docker engine did not answer within {seconds:g} s ({what})"
            self._mark(message)
            raise EngineUnavailable(message) from None

    def _call(self, what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        try:
            if self.fault is not None:
                self.fault(what)
            result = fn(*args, **kwargs)
        except SandboxError:
            raise
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            message = f"the Docker engine is unreachable ({what}): {exc}"
            self._mark(message)
            raise EngineUnavailable(message) from exc
        except docker.errors.APIError as exc:
            self._mark(None)
            raise EngineError(f"the Docker engine failed to {what}: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"the Docker engine failed to {what}: {exc}") from exc
        except OSError as exc:
            raise SandboxError(f"cannot {what}: {exc}") from exc
        self._mark(None)
        return result

    def _mark(self, unavailable: str | None) -> None:
        with self._state:
            if unavailable is not None and self.unavailable is None:
                log.warning("sandbox unavailable: %s", unavailable)
            elif unavailable is None and self.unavailable is not None:
                log.info("the Docker engine answers again")
            self.unavailable = unavailable

    def close(self) -> None:
        """Let running calls finish in the background (a hung one must not block shutdown)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()
