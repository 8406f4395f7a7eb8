"""MCP servers that need credentials, taken from the session's vaults: a static bearer token
(matched by normalised URL, rotated and archived while the session runs) and an OAuth access
token that expires mid-session and is refreshed. The secrets never show anywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anthropic
import httpx
import pytest

from tests.mcp.support import SDK, call, errors, mcp_session, text_of
from tests.support.clients import API_KEY
from tests.support.loop import TOOLSET, log, of_type, result_text, turn
from tests.support.mcp_servers import Auth, McpTestServer, free_port
from tests.support.server import ServerThread


@pytest.fixture
def private() -> Iterator[McpTestServer]:
    server = McpTestServer(auth=Auth(required=True)).start()
    try:
        yield server
    finally:
        server.stop()


def _shouting(url: str) -> str:
    """The same server, spelt differently: host case, default port, trailing slash."""
    return url.replace("http://127.0.0.1:", "HTTP://127.0.0.1:").rstrip("/") + "/"


async def _everything_a_client_sees(loop: SDK, server: ServerThread, session_id: str, vault_id: str) -> str:
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        paths = [
            f"/v1/sessions/{session_id}",
            f"/v1/sessions/{session_id}/events?limit=1000",
            f"/v1/vaults/{vault_id}",
            f"/v1/vaults/{vault_id}/credentials?include_archived=true",
        ]
        return "\n".join([(await http.get(p)).text for p in paths])


async def test_a_bearer_token_from_a_vault_never_leaks(
    loop: SDK, mcp_loop_server: ServerThread, private: McpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = private.auth.issue()
    vault = await loop.beta.vaults.create(display_name="alice")
    credential = await loop.beta.vaults.credentials.create(
        vault.id, auth={"type": "static_bearer", "token": token, "mcp_server_url": _shouting(private.url)}
    )
    session_id = await mcp_session(
        loop, {"private": private.url}, vault_ids=[vault.id], extra_tools=[TOOLSET]
    )

    events = await turn(
        loop,
        session_id,
        call("private", "add", a=4, b=5) + '\n/tool bash {"command": "env; cat /proc/self/environ"}',
    )

    assert errors(events) == []
    assert [text_of(r) for r in of_type(events, "agent.mcp_tool_result")] == ["9"]
    assert "PATH" in result_text(of_type(events, "agent.tool_result")[0])  # the env was listed
    seen = await _everything_a_client_sees(loop, mcp_loop_server, session_id, vault.id)
    assert credential.id in seen and token not in seen
    # Every log line of the process but the test client's own (the SDK logs what it sends).
    server_lines = [r.getMessage() for r in caplog.records if not r.name.startswith("anthropic")]
    assert len(server_lines) > 100 and not [line for line in server_lines if token in line]


async def test_rotation_and_archival_reach_a_running_session(loop: SDK, private: McpTestServer) -> None:
    old = private.auth.issue()
    vault = await loop.beta.vaults.create(display_name="rotating")
    credential = await loop.beta.vaults.credentials.create(
        vault.id, auth={"type": "static_bearer", "token": old, "mcp_server_url": private.url}
    )
    session_id = await mcp_session(loop, {"private": private.url}, vault_ids=[vault.id])
    first = await turn(loop, session_id, call("private", "add", a=1, b=1))

    new = private.auth.issue()
    del private.auth.tokens[old]  # the old token is revoked at the server
    await loop.beta.vaults.credentials.update(
        credential.id, vault_id=vault.id, auth={"type": "static_bearer", "token": new}
    )
    rotated = await turn(loop, session_id, call("private", "add", a=2, b=2))

    await loop.beta.vaults.credentials.archive(credential.id, vault_id=vault.id)
    archived = await turn(loop, session_id, call("private", "add", a=3, b=3))

    assert errors(first) == [] and errors(rotated) == []
    assert [text_of(r) for r in of_type(rotated, "agent.mcp_tool_result")] == ["2", "4"]
    assert [e.type for e in errors(archived)] == ["mcp_authentication_failed_error"]
    assert len(of_type(archived, "agent.mcp_tool_result")) == 2  # the third call was not offered


async def test_an_expired_oauth_token_is_refreshed_mid_session(loop: SDK) -> None:
    auth = Auth(required=True, lifetime_s=3600)
    server = McpTestServer(auth=auth).start()
    try:
        access = auth.issue(lifetime_s=3)  # the server lets it expire soon; the credential cannot tell
        auth.refresh_tokens.add("rt-first")
        vault = await loop.beta.vaults.create(display_name="oauth")
        credential = await loop.beta.vaults.credentials.create(
            vault.id,
            auth={
                "type": "mcp_oauth",
                "access_token": access,
                "mcp_server_url": server.url,
                "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "refresh": {
                    "client_id": auth.client_id,
                    "refresh_token": "rt-first",
                    "token_endpoint": server.token_endpoint,
                    "token_endpoint_auth": {
                        "type": "client_secret_basic",
                        "client_secret": auth.client_secret,
                    },
                },
            },
        )
        session_id = await mcp_session(loop, {"oauth": server.url}, vault_ids=[vault.id])
        first = await turn(loop, session_id, call("oauth", "add", a=1, b=2))
        while auth.valid(f"Bearer {access}"):
            await asyncio_sleep(0.2)
        second = await turn(loop, session_id, call("oauth", "add", a=3, b=4))
        refreshed = await loop.beta.vaults.credentials.retrieve(credential.id, vault_id=vault.id)

        auth.refresh_tokens.clear()  # the grant is revoked: the next refresh fails
        auth.tokens.clear()
        third = await turn(loop, session_id, call("oauth", "add", a=5, b=6))
        fourth = await turn(loop, session_id, "once more")
    finally:
        server.stop()

    assert errors(first) == [] and errors(second) == []
    assert [text_of(r) for r in of_type(second, "agent.mcp_tool_result")] == ["3", "7"]
    assert auth.refreshes == 1
    assert getattr(refreshed.auth, "expires_at", None) is not None
    assert refreshed.updated_at > credential.updated_at
    assert errors(third) == []
    failed = of_type(third, "agent.mcp_tool_result")[-1]
    assert failed.is_error and "refreshing the OAuth access token failed" in text_of(failed)
    [error] = errors(fourth)
    assert error.type == "mcp_authentication_failed_error" and "refreshing the OAuth access token failed" in (
        error.message
    )
    assert "rt-" not in str([e.model_dump() for e in await log(loop, session_id)])


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_mcp_oauth_validate_probes_and_refreshes(loop: SDK) -> None:
    auth = Auth(required=True)
    server = McpTestServer(auth=auth).start()
    validate = loop.beta.vaults.credentials.mcp_oauth_validate
    try:
        vault = await loop.beta.vaults.create(display_name="validate")

        async def oauth_credential(url: str, access: str, refresh_token: str | None) -> str:
            params: dict[str, object] = {"type": "mcp_oauth", "access_token": access, "mcp_server_url": url}
            if refresh_token is not None:
                params["refresh"] = {
                    "client_id": auth.client_id,
                    "refresh_token": refresh_token,
                    "token_endpoint": server.token_endpoint,
                    "token_endpoint_auth": {
                        "type": "client_secret_basic",
                        "client_secret": auth.client_secret,
                    },
                }
            created = await loop.beta.vaults.credentials.create(vault.id, auth=params)  # type: ignore[arg-type]
            return created.id

        good = await oauth_credential(server.url, auth.issue(), "rt-good")
        auth.refresh_tokens.add("rt-good")
        stale = await oauth_credential(server.url + "/a", "at-stale", "rt-good")
        revoked = await oauth_credential(server.url + "/b", "at-stale", "rt-revoked")
        bare = await oauth_credential(server.url + "/c", "at-stale", None)
        dead = await oauth_credential(f"http://127.0.0.1:{free_port()}/mcp", "at-x", None)

        valid = await validate(good, vault_id=vault.id)
        refreshed = await validate(stale, vault_id=vault.id)
        failed = await validate(revoked, vault_id=vault.id)
        no_refresh = await validate(bare, vault_id=vault.id)
        unreachable = await validate(dead, vault_id=vault.id)
    finally:
        server.stop()

    assert (valid.status, valid.has_refresh_token, valid.mcp_probe, valid.refresh) == (
        "valid",
        True,
        None,
        None,
    )
    assert refreshed.status == "unknown" and refreshed.refresh is not None
    assert refreshed.refresh.status == "succeeded" and auth.refreshes == 1
    assert refreshed.mcp_probe is not None and refreshed.mcp_probe.http_response is not None
    assert refreshed.mcp_probe.http_response.status_code == 401
    assert failed.status == "invalid" and failed.refresh is not None and failed.refresh.status == "failed"
    assert failed.refresh.http_response is not None and failed.refresh.http_response.status_code == 400
    assert "invalid_grant" in failed.refresh.http_response.body
    assert no_refresh.status == "invalid" and no_refresh.refresh is not None
    assert no_refresh.refresh.status == "no_refresh_token" and not no_refresh.has_refresh_token
    assert unreachable.status == "unknown" and unreachable.mcp_probe is not None
    assert unreachable.mcp_probe.http_response is None


async def test_only_mcp_oauth_credentials_are_validated(loop: SDK) -> None:
    vault = await loop.beta.vaults.create(display_name="not-oauth")
    bearer = await loop.beta.vaults.credentials.create(
        vault.id, auth={"type": "static_bearer", "token": "t", "mcp_server_url": "https://x.example.com/"}
    )

    with pytest.raises(anthropic.BadRequestError, match="only mcp_oauth"):
        await loop.beta.vaults.credentials.mcp_oauth_validate(bearer.id, vault_id=vault.id)
    with pytest.raises(anthropic.NotFoundError):
        await loop.beta.vaults.credentials.mcp_oauth_validate("vcrd_missing", vault_id=vault.id)
