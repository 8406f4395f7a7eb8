"""The agent loop's one door to MCP: per-session connections kept across turns.

At the start of each turn (each ``session.status_running``) every server the agent declares is
made ready: its credential is resolved afresh from the session's vaults (so rotation and archival
reach running sessions), an OAuth access token that has expired is refreshed, and a live
connection made with the same token is reused; otherwise it is (re)connected and its tools
listed. A server that cannot be used becomes a ``session.error`` and is tried again next turn;
the session goes on with its other tools. Connections idle for ``MAS_MCP_IDLE_SECONDS`` close.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import JsonValue

from app.config import Settings
from app.db.engine import Database
from app.events.types import ContentBlock, EventRecord
from app.mcp import oauth
from app.mcp.base import McpFailure
from app.mcp.tools import McpTool, evaluate, offered_name
from app.shared.agent_config import SessionAgent
from app.shared.content import ToolDefinition
from app.shared.loops import LoopService
from app.vaults import resolve
from app.vaults.resolve import McpCredential
from app.vaults.secrets import SecretBox

if TYPE_CHECKING:
    from app.mcp.connection import McpConnection

log = logging.getLogger(__name__)


@dataclass
class _Server:
    name: str
    url: str
    connection: McpConnection | None = None
    token_key: str | None = None  # which token the connection was made with
    # Parallel calls to a server that must be (re)connected connect it once.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def live(self) -> bool:
        return self.connection is not None and self.connection.alive


@dataclass
class _Session:
    servers: dict[str, _Server] = field(default_factory=dict)
    turn: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    calls: int = 0  # in flight: an idle session's connections close, never one mid-call

    @property
    def busy(self) -> bool:
        return self.lock.locked() or self.calls > 0


@dataclass(frozen=True)
class Outcome:
    content: list[ContentBlock]
    is_error: bool


def _token_key(credential: McpCredential | None) -> str:
    if credential is None:
        return "none"
    return hashlib.sha256(f"{credential.credential_id}\0{credential.token}".encode()).hexdigest()


def session_error(server: str, failure: McpFailure) -> EventRecord:
    kind = "mcp_authentication_failed_error" if failure.auth else "mcp_connection_failed_error"
    return {
        "type": "session.error",
        "error": {
            "type": kind,
            "message": f"MCP server {server!r}: {failure}",
            "mcp_server_name": server,
            "retry_status": {"type": "exhausted"},
        },
    }


class McpHub:
    def __init__(self, settings: Settings, database: Database, box: SecretBox) -> None:
        self.settings = settings
        self.database = database
        self.box = box
        self._sessions: dict[str, _Session] = {}
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self.reaper = _IdleReaper(self)
        self._closing: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reaper.start()

    async def close(self) -> None:
        await self.reaper.stop()
        for session_id in list(self._sessions):
            await self.release(session_id)

    def connected(self, session_id: str) -> list[str]:
        """The servers a session has a live connection to."""
        state = self._sessions.get(session_id)
        return [s.name for s in state.servers.values() if s.live] if state else []

    # A SessionListener: a deleted session's connections close at once.
    def session_created(self, session_id: str) -> None:
        pass

    def session_deleted(self, session_id: str) -> None:
        if session_id in self._sessions:
            task = asyncio.create_task(self.release(session_id), name=f"mcp-release-{session_id}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def release(self, session_id: str) -> None:
        state = self._sessions.pop(session_id, None)
        if state is not None:
            await asyncio.gather(*(self._disconnect(s) for s in state.servers.values()))

    async def release_idle(self) -> None:
        """Close the connections of sessions unused for `mcp_idle_seconds` (none busy)."""
        cutoff = time.monotonic() - self.settings.mcp_idle_seconds
        for session_id, state in list(self._sessions.items()):
            if state.last_used < cutoff and not state.busy:
                await self.release(session_id)

    # -- turns -----------------------------------------------------------------------------------
    def needs_setup(self, session_id: str, agent: SessionAgent, turn: str) -> bool:
        if not agent.get("mcp_servers"):
            return False
        state = self._sessions.get(session_id)
        return state is None or state.turn != turn

    async def setup_turn(
        self, session_id: str, agent: SessionAgent, vault_ids: Sequence[str], turn: str
    ) -> list[EventRecord]:
        """Make every declared server ready; the ``session.error`` events of those that are not."""
        state = self._sessions.setdefault(session_id, _Session())
        async with state.lock:
            state.last_used = time.monotonic()
            declared = {s["name"]: s["url"] for s in agent.get("mcp_servers") or []}
            for name in [
                n for n in state.servers if n not in declared or state.servers[n].url != declared[n]
            ]:
                await self._disconnect(state.servers.pop(name))
            for name, url in declared.items():
                state.servers.setdefault(name, _Server(name, url))
            failures = await asyncio.gather(
                *(self._ready(state.servers[name], vault_ids) for name in declared)
            )
            state.turn = turn
        return [session_error(name, f) for name, f in zip(declared, failures, strict=True) if f is not None]

    def tools(self, session_id: str, agent: SessionAgent) -> list[McpTool]:
        """The enabled tools of the servers that are connected, in declaration order."""
        state = self._sessions.get(session_id)
        if state is None:
            return []
        out = []
        for server in (state.servers.get(s["name"]) for s in agent.get("mcp_servers") or []):
            if server is None or server.connection is None:
                continue
            for tool in server.connection.tools:
                if evaluate(agent, server.name, tool.name)[0] != "deny":
                    out.append(McpTool(server.name, tool))
        return out

    def definitions(self, session_id: str, agent: SessionAgent) -> list[ToolDefinition]:
        return [tool.definition() for tool in self.tools(session_id, agent)]

    def lookup(self, session_id: str, agent: SessionAgent, name: str) -> tuple[str, str] | None:
        """(server, tool) of a name the model called, or None when it names no MCP tool."""
        state = self._sessions.get(session_id)
        for server in state.servers.values() if state else []:
            for tool in server.connection.tools if server.connection else []:
                if offered_name(server.name, tool.name) == name:
                    return server.name, tool.name
        for server_config in agent.get("mcp_servers") or []:  # a server down since the call was made
            prefix = offered_name(server_config["name"], "")
            if name.startswith(prefix) and len(name) > len(prefix):
                return server_config["name"], name[len(prefix) :]
        return None

    # -- calls -----------------------------------------------------------------------------------
    async def call(
        self,
        session_id: str,
        agent: SessionAgent,
        vault_ids: Sequence[str],
        server_name: str,
        tool: str,
        arguments: dict[str, JsonValue],  # a tool input, chosen by the model
        sent: Callable[[], None] | None = None,
    ) -> Outcome:
        """Run one call. A server not connected yet (another worker made the call, or the
        connection closed while the session waited) is connected first; a call that may have
        reached the server is never sent twice. ``sent``: see `McpConnection.call`."""
        state = self._sessions.setdefault(session_id, _Session())
        state.calls += 1
        try:
            return await self._call_on(state, agent, vault_ids, server_name, tool, arguments, sent)
        finally:
            state.calls -= 1
            state.last_used = time.monotonic()

    async def _call_on(
        self,
        state: _Session,
        agent: SessionAgent,
        vault_ids: Sequence[str],
        server_name: str,
        tool: str,
        arguments: dict[str, JsonValue],  # a tool input, chosen by the model
        sent: Callable[[], None] | None,
    ) -> Outcome:
        server = state.servers.get(server_name)
        if server is None:
            url = next((s["url"] for s in agent.get("mcp_servers") or [] if s["name"] == server_name), None)
            if url is None:
                return _error(f"MCP server {server_name!r} is not declared by this session's agent.")
            server = state.servers.setdefault(server_name, _Server(server_name, url))
        async with server.lock:
            unavailable = None if server.live else await self._ready(server, vault_ids)
        if unavailable is not None:
            return _error(f"MCP server {server_name!r} is unavailable: {unavailable}")
        try:
            return await self._call(server, tool, arguments, sent)
        except McpFailure as failure:
            problem = failure
            if failure.auth:  # refused before it ran: with a refreshed OAuth token, try once more
                async with server.lock:
                    problem = await self._reconnect_refreshed(server, vault_ids, failure) or failure
                if server.live:
                    try:
                        return await self._call(server, tool, arguments)
                    except McpFailure as again:
                        problem = again
            await self._disconnect(server)
            return _error(f"MCP server {server_name!r} failed during the call: {problem}")

    async def _call(
        self,
        server: _Server,
        tool: str,
        arguments: dict[str, JsonValue],  # a tool input, chosen by the model
        sent: Callable[[], None] | None = None,
    ) -> Outcome:
        from app.mcp.content import to_blocks  # with the SDK, only once a session uses MCP

        assert server.connection is not None
        result = await server.connection.call(tool, arguments, sent)
        return Outcome(to_blocks(result), bool(result.is_error))

    async def _reconnect_refreshed(
        self, server: _Server, vault_ids: Sequence[str], failure: McpFailure
    ) -> McpFailure | None:
        """Reconnect with a refreshed access token; the problem when that is not possible."""
        await self._disconnect(server)
        credential = await self._credential(server.url, vault_ids)
        if credential is None or credential.refresh is None:
            return failure
        try:
            credential = await self._refresh(credential)
        except oauth.RefreshFailed as error:
            return McpFailure(f"{failure}; refreshing the OAuth access token failed: {error}", auth=True)
        return await self._connect(server, credential)

    # -- connecting ------------------------------------------------------------------------------
    async def _ready(self, server: _Server, vault_ids: Sequence[str]) -> McpFailure | None:
        try:
            credential = await self._credential(server.url, vault_ids)
            if credential is not None and credential.kind == "mcp_oauth" and credential.expired():
                credential = await self._refresh(credential)
        except oauth.RefreshFailed as error:
            await self._disconnect(server)
            return McpFailure(f"refreshing the OAuth access token failed: {error}", auth=True)
        if server.live and server.token_key == _token_key(credential):
            return None
        await self._disconnect(server)
        failure = await self._connect(server, credential)
        if failure is not None and failure.auth and credential is not None and credential.refresh is not None:
            try:  # the server says the token is no longer good: refresh once and try again
                credential = await self._refresh(credential)
            except oauth.RefreshFailed as error:
                return McpFailure(f"{failure}; refreshing the OAuth access token failed: {error}", auth=True)
            failure = await self._connect(server, credential)
        return failure

    async def _connect(self, server: _Server, credential: McpCredential | None) -> McpFailure | None:
        from app.mcp.connection import McpConnection  # the SDK loads only once a session uses MCP

        connection = McpConnection(
            server.url,
            credential.token if credential else None,
            call_timeout_s=self.settings.mcp_call_timeout_seconds,
        )
        try:
            await connection.open()
        except McpFailure as failure:
            return failure
        replaced = server.connection
        server.connection, server.token_key = connection, _token_key(credential)
        if replaced is not None:
            await replaced.close()
        return None

    async def _disconnect(self, server: _Server) -> None:
        connection, server.connection, server.token_key = server.connection, None, None
        if connection is not None:
            await connection.close()

    # -- credentials -----------------------------------------------------------------------------
    async def _credential(self, url: str, vault_ids: Sequence[str]) -> McpCredential | None:
        async with self.database.read() as db:
            return await resolve.mcp_credential(db, self.box, vault_ids, url)

    async def _refresh(self, credential: McpCredential) -> McpCredential:
        """Refresh once per credential at a time: concurrent sessions wait and reuse the result."""
        lock = self._refresh_locks.setdefault(credential.credential_id, asyncio.Lock())
        async with lock:
            async with self.database.read() as db:
                current = await resolve.credential_by_id(db, self.box, credential.credential_id)
            if current is not None and current.token != credential.token and not current.expired():
                return current  # another session refreshed it meanwhile
            return await oauth.refresh_stored(self.database, self.box, current or credential)


def _error(message: str) -> Outcome:
    return Outcome([{"type": "text", "text": message}], True)


class _IdleReaper(LoopService):
    """Closes idle sessions' MCP connections, every quarter of `mcp_idle_seconds` (1 s at least)."""

    wait_first = True

    def __init__(self, hub: McpHub) -> None:
        super().__init__("mcp-reaper", max(1.0, hub.settings.mcp_idle_seconds / 4))
        self._hub = hub

    async def run_once(self) -> float | None:
        await self._hub.release_idle()
        return None
