"""One live connection to one MCP server, with the official ``mcp`` client.

The client's transport runs in an anyio task group that belongs to the task that entered it, so
each connection gets a task of its own (``_hold``): it connects, then holds the connection open
until ``close``. Calls come from other tasks; if the connection dies (the server went away), the
holding task ends and every call still waiting fails at once instead of hanging.

Streamable HTTP first; a server that answers it with 404 or 405 is tried over SSE. A 401 or 403
on any request is remembered, so the failure is reported as an authentication problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp import types as mt
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import JsonValue

from app.mcp.base import ListedTool, McpFailure

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
AUTH_STATUSES = (401, 403)
FALLBACK_STATUSES = (404, 405)


@dataclass
class _Statuses:
    """HTTP error statuses the transport saw (the client reports them as generic errors)."""

    seen: list[int]

    async def hook(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.seen.append(response.status_code)

    @property
    def auth_refused(self) -> bool:
        return any(s in AUTH_STATUSES for s in self.seen)


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside the task groups' exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class McpConnection:
    def __init__(self, url: str, token: str | None, *, call_timeout_s: float) -> None:
        self.url = url
        self.token = token
        self.call_timeout_s = call_timeout_s
        self.tools: list[ListedTool] = []
        self._statuses = _Statuses([])
        self._client: Client | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Callers told when their request has been written (see `call`), oldest first.
        self._sending: deque[Callable[[], None]] = deque()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._client is not None

    @property
    def auth_refused(self) -> bool:
        return self._statuses.auth_refused

    async def open(self) -> None:
        """Connect and list the tools; raises McpFailure."""
        self._task = asyncio.create_task(self._hold(), name=f"mcp {self.url}")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), CONNECT_TIMEOUT_S)
        except TimeoutError:
            await self.close()
            raise McpFailure(f"no answer within {CONNECT_TIMEOUT_S:.0f} s") from None
        except McpFailure:
            await self.close()
            raise

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task

    async def call(
        self,
        tool: str,
        arguments: dict[str, JsonValue],  # a tool input, chosen by the model
        sent: Callable[[], None] | None = None,
    ) -> mt.CallToolResult:
        """Raises McpFailure when the server cannot answer (gone, timed out, refused). ``sent``
        is called once the call's request has been written to the server's socket (with calls
        in parallel on one connection: once as many requests as calls waiting were written); it
        may never be called if the request is not written."""
        client, task = self._client, self._task
        if client is None or task is None or task.done():
            raise McpFailure("the connection to the server was lost")
        if sent is not None:
            self._sending.append(sent)
        try:
            return await self._call(client, task, tool, arguments)
        finally:
            if sent is not None and sent in self._sending:  # not written: the caller moves on anyway
                self._sending.remove(sent)

    async def _call(
        self,
        client: Client,
        task: asyncio.Task[None],
        tool: str,
        arguments: dict[str, JsonValue],  # a tool input, chosen by the model
    ) -> mt.CallToolResult:
        calling = asyncio.ensure_future(client.call_tool(tool, arguments))
        try:
            done, _ = await asyncio.wait(
                {calling, task}, timeout=self.call_timeout_s, return_when="FIRST_COMPLETED"
            )
        except asyncio.CancelledError:  # the caller gave up (an interrupt): so does the request
            calling.cancel()
            raise
        if calling in done:
            try:
                return calling.result()
            except Exception as error:
                raise self._failure(error) from None
        calling.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await calling
        if task in done:
            raise McpFailure("the connection to the server was lost during the call")
        raise McpFailure(f"no answer within {self.call_timeout_s:.0f} s")

    # -- the holding task ------------------------------------------------------------------------
    async def _hold(self) -> None:
        try:
            await self._connect_and_wait(streamable=True)
        except BaseException as error:
            leaf = _leaf(error)
            if not self._ready.done() and self._fallback_to_sse():
                self._statuses.seen.clear()
                try:
                    await self._connect_and_wait(streamable=False)
                except BaseException as sse_error:
                    self._fail_ready(_leaf(sse_error))
            else:
                self._fail_ready(leaf)
            if isinstance(error, asyncio.CancelledError) and self._closing.is_set():
                return
        finally:
            self._client = None

    def _fallback_to_sse(self) -> bool:
        return any(s in FALLBACK_STATUSES for s in self._statuses.seen)

    def _fail_ready(self, error: BaseException) -> None:
        if not self._ready.done():
            self._ready.set_exception(self._failure(error))
        else:
            log.info("MCP connection to %s ended: %s", self.url, type(error).__name__)

    def _http(self) -> httpx2.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(CONNECT_TIMEOUT_S, read=self.call_timeout_s + 30),
            follow_redirects=True,
            event_hooks={"response": [self._statuses.hook], "request": [self._trace_posts]},
        )

    async def _connect_and_wait(self, *, streamable: bool) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if streamable:
                http = await stack.enter_async_context(self._http())
                transport: Any = streamable_http_client(self.url, http_client=http)
            else:
                transport = sse_client(self.url, httpx_client_factory=self._sse_factory)
            client = await stack.enter_async_context(Client(transport))
            listed = await client.list_tools()
            self.tools = [ListedTool(t.name, t.description or "", dict(t.input_schema)) for t in listed.tools]
            self._client = client
            if not self._ready.done():
                self._ready.set_result(None)
            await self._closing.wait()

    async def _trace_posts(self, request: httpx2.Request) -> None:
        """An httpx request hook: a POST (the transports send each call as one) while a caller
        waits to hear that its request went out is traced, to tell it when the body is written."""
        if request.method == "POST" and self._sending and "trace" not in request.extensions:
            request.extensions["trace"] = self._written

    async def _written(self, name: str, info: dict[str, Any]) -> None:  # JSON boundary: httpcore trace info
        if name.endswith("send_request_body.complete") and self._sending:
            self._sending.popleft()()

    def _sse_factory(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        client = self._http()
        if headers:
            client.headers.update(headers)
        if timeout is not None:
            client.timeout = timeout
        return client

    def _failure(self, error: BaseException) -> McpFailure:
        if isinstance(error, McpFailure):
            return error
        if self._statuses.auth_refused:
            status = next(s for s in self._statuses.seen if s in AUTH_STATUSES)
            return McpFailure(f"the server refused the credentials (HTTP {status})", auth=True, status=status)
        if isinstance(error, httpx2.ConnectError | httpx2.ConnectTimeout):
            return McpFailure("could not connect to the server")
        if isinstance(error, httpx2.HTTPStatusError):
            return McpFailure(f"the server answered HTTP {error.response.status_code}")
        if self._statuses.seen:
            last = self._statuses.seen[-1]
            return McpFailure(f"the server answered HTTP {last}", status=last)
        if isinstance(error, MCPError) and "closed" in str(error).lower():
            return McpFailure("the connection to the server was lost during the call")
        return McpFailure(f"{type(error).__name__}: {str(error)[:300]}")


Opener = Callable[[str, str | None], Awaitable[McpConnection]]
