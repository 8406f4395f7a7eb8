"""/v1/vaults/{id}/credentials through the real SDK (strict), on each backend: the three kinds,
write-only secrets sealed at rest, unique and immutable keys, the limit, and bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.vaults.secrets import SecretBox
from tests.support.server import ServerThread


def _vault(client: anthropic.Anthropic) -> str:
    return client.beta.vaults.create(display_name=f"v-{uuid.uuid4().hex[:6]}").id


def _secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def _bearer(url: str = "https://mcp.example.com/mcp", token: str | None = None) -> Any:
    return {"type": "static_bearer", "token": token or _secret(), "mcp_server_url": url}


def _oauth(**extra: Any) -> Any:
    return {
        "type": "mcp_oauth",
        "access_token": _secret(),
        "mcp_server_url": "https://oauth.example.com/mcp",
        "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "refresh": {
            "client_id": "client-1",
            "refresh_token": _secret(),
            "token_endpoint": "https://auth.example.com/token",
            "token_endpoint_auth": {"type": "client_secret_basic", "client_secret": _secret()},
            "scope": "read write",
        },
        **extra,
    }


def _env(name: str = "GITHUB_TOKEN", **extra: Any) -> Any:
    return {
        "type": "environment_variable",
        "secret_name": name,
        "secret_value": _secret(),
        "networking": {"type": "limited", "allowed_hosts": ["api.github.com", "*.example.com", "192.0.2.1"]},
        **extra,
    }


def _box(server: ServerThread) -> SecretBox:
    box: SecretBox = server.app.state.secret_box
    return box


def test_static_bearer_is_write_only(client: anthropic.Anthropic, http: httpx.Client) -> None:
    vault_id = _vault(client)
    auth = _bearer()

    credential = client.beta.vaults.credentials.create(
        vault_id,
        auth=auth,
        display_name="Slack",
        metadata={"team": "a"},
    )

    assert credential.id.startswith("vcrd_") and credential.type == "vault_credential"
    assert credential.vault_id == vault_id and credential.display_name == "Slack"
    assert credential.auth.model_dump() == {"type": "static_bearer", "mcp_server_url": auth["mcp_server_url"]}
    bodies = [
        http.get(f"/v1/vaults/{vault_id}/credentials/{credential.id}").text,
        http.get(f"/v1/vaults/{vault_id}/credentials").text,
        http.post(f"/v1/vaults/{vault_id}/credentials/{credential.id}", json={"display_name": "x"}).text,
    ]
    assert all(credential.id in body and auth["token"] not in body for body in bodies)


def test_mcp_oauth_shows_its_refresh_config_without_secrets(client: anthropic.Anthropic) -> None:
    auth = _oauth()

    credential = client.beta.vaults.credentials.create(_vault(client), auth=auth)

    shown = credential.auth.model_dump(mode="json", exclude_none=True)
    assert shown["type"] == "mcp_oauth" and shown["mcp_server_url"] == auth["mcp_server_url"]
    assert shown["refresh"] == {
        "client_id": "client-1",
        "token_endpoint": "https://auth.example.com/token",
        "token_endpoint_auth": {"type": "client_secret_basic"},
        "scope": "read write",
    }
    assert credential.auth.expires_at is not None  # type: ignore[union-attr]
    dumped = credential.model_dump_json()
    for secret in (auth["access_token"], auth["refresh"]["refresh_token"]):
        assert secret not in dumped
    assert auth["refresh"]["token_endpoint_auth"]["client_secret"] not in dumped


def test_environment_variable_defaults(client: anthropic.Anthropic) -> None:
    credential = client.beta.vaults.credentials.create(_vault(client), auth=_env())

    assert credential.auth.model_dump() == {
        "type": "environment_variable",
        "secret_name": "GITHUB_TOKEN",
        "networking": {"type": "limited", "allowed_hosts": ["api.github.com", "*.example.com", "192.0.2.1"]},
        "injection_location": {"header": True, "body": False},
    }


async def test_secrets_are_sealed_at_rest_and_rotated(
    client: anthropic.Anthropic, mas_server: ServerThread, db: AsyncSession
) -> None:
    vault_id = _vault(client)
    first, second = _secret(), _secret()
    credential = client.beta.vaults.credentials.create(vault_id, auth=_bearer(token=first))

    stored = await db.get(models.VaultCredential, credential.id)
    assert stored is not None and first not in stored.secret and first not in str(stored.auth)
    assert _box(mas_server).open(credential.id, stored.secret) == {"token": first}

    rotated = client.beta.vaults.credentials.update(
        credential.id, vault_id=vault_id, auth={"type": "static_bearer", "token": second}
    )
    await db.rollback()  # a new snapshot
    stored = await db.get(models.VaultCredential, credential.id)
    assert stored is not None and _box(mas_server).open(credential.id, stored.secret) == {"token": second}
    assert rotated.updated_at > credential.updated_at

    archived = client.beta.vaults.credentials.archive(credential.id, vault_id=vault_id)
    await db.rollback()  # a new snapshot
    stored = await db.get(models.VaultCredential, credential.id)
    assert archived.archived_at is not None and stored is not None and stored.secret == ""
    with pytest.raises(anthropic.BadRequestError, match="is archived"):
        client.beta.vaults.credentials.update(
            credential.id, vault_id=vault_id, auth={"type": "static_bearer", "token": first}
        )


def test_keys_are_unique_among_active_credentials(client: anthropic.Anthropic) -> None:
    vault_id = _vault(client)
    first = client.beta.vaults.credentials.create(vault_id, auth=_bearer("https://mcp.example.com/mcp"))
    client.beta.vaults.credentials.create(vault_id, auth=_env("API_KEY"))

    # The same server, however spelt: scheme and host case, default port, trailing slash.
    for url in ("HTTPS://MCP.Example.com:443/mcp/", "https://mcp.example.com/mcp"):
        with pytest.raises(anthropic.ConflictError, match=first.id):
            client.beta.vaults.credentials.create(vault_id, auth=_oauth(mcp_server_url=url))
    with pytest.raises(anthropic.ConflictError, match="API_KEY"):
        client.beta.vaults.credentials.create(vault_id, auth=_env("API_KEY"))

    # Another path or port is another server; another vault is another namespace.
    client.beta.vaults.credentials.create(vault_id, auth=_bearer("https://mcp.example.com/other"))
    client.beta.vaults.credentials.create(vault_id, auth=_bearer("https://mcp.example.com:8443/mcp"))
    client.beta.vaults.credentials.create(_vault(client), auth=_bearer("https://mcp.example.com/mcp"))
    # Archiving frees the key.
    client.beta.vaults.credentials.archive(first.id, vault_id=vault_id)
    client.beta.vaults.credentials.create(vault_id, auth=_bearer("https://mcp.example.com/mcp/"))


def test_keys_and_types_cannot_change(client: anthropic.Anthropic, http: httpx.Client) -> None:
    vault_id = _vault(client)
    bearer = client.beta.vaults.credentials.create(vault_id, auth=_bearer())
    env = client.beta.vaults.credentials.create(vault_id, auth=_env())
    path = f"/v1/vaults/{vault_id}/credentials"

    moved = http.post(
        f"{path}/{bearer.id}",
        json={"auth": {"type": "static_bearer", "mcp_server_url": "https://evil.test/"}},
    )
    renamed = http.post(
        f"{path}/{env.id}", json={"auth": {"type": "environment_variable", "secret_name": "OTHER"}}
    )
    same = http.post(
        f"{path}/{bearer.id}",
        json={"auth": {"type": "static_bearer", "mcp_server_url": "https://MCP.example.com/mcp/"}},
    )

    assert moved.status_code == renamed.status_code == 400
    assert "cannot be changed" in moved.json()["error"]["message"]
    assert "secret_name" in renamed.json()["error"]["message"]
    assert same.status_code == 200
    with pytest.raises(anthropic.BadRequestError, match="type of a credential cannot change"):
        client.beta.vaults.credentials.update(
            bearer.id, vault_id=vault_id, auth={"type": "mcp_oauth", "access_token": "x"}
        )


def test_environment_variable_update_rules(client: anthropic.Anthropic) -> None:
    vault_id = _vault(client)
    credential = client.beta.vaults.credentials.create(vault_id, auth=_env())
    update = client.beta.vaults.credentials.update

    body_too = update(
        credential.id,
        vault_id=vault_id,
        auth={
            "type": "environment_variable",
            "injection_location": {"body": True},
            "networking": {"type": "unrestricted"},
        },
    )

    assert body_too.auth.model_dump()["injection_location"] == {"header": True, "body": True}
    assert body_too.auth.model_dump()["networking"] == {"type": "unrestricted"}
    with pytest.raises(anthropic.BadRequestError, match="at least one of header and body"):
        update(
            credential.id,
            vault_id=vault_id,
            auth={"type": "environment_variable", "injection_location": {"header": False, "body": False}},
        )


def test_oauth_update_rules(client: anthropic.Anthropic) -> None:
    vault_id = _vault(client)
    credential = client.beta.vaults.credentials.create(vault_id, auth=_oauth())
    update = client.beta.vaults.credentials.update

    cleared = update(
        credential.id,
        vault_id=vault_id,
        auth={
            "type": "mcp_oauth",
            "access_token": _secret(),
            "expires_at": None,
            "refresh": {
                "scope": "",
                "token_endpoint_auth": {"type": "client_secret_post", "client_secret": "n"},
            },
        },
    )
    plain = client.beta.vaults.credentials.create(
        vault_id,
        auth=_oauth(mcp_server_url="https://plain.example.com/", refresh=None),
    )

    auth = cleared.auth.model_dump(mode="json")
    assert auth["expires_at"] is None and auth["refresh"]["scope"] is None
    assert auth["refresh"]["token_endpoint_auth"] == {"type": "client_secret_basic"}  # keeps its type
    with pytest.raises(anthropic.BadRequestError, match="no refresh configuration"):
        update(plain.id, vault_id=vault_id, auth={"type": "mcp_oauth", "refresh": {"refresh_token": "r"}})
    with pytest.raises(anthropic.BadRequestError, match="must be in the future"):
        update(plain.id, vault_id=vault_id, auth={"type": "mcp_oauth", "expires_at": "2020-01-01T00:00:00Z"})


def test_at_most_twenty_active_credentials(client: anthropic.Anthropic) -> None:
    vault_id = _vault(client)
    made = [
        client.beta.vaults.credentials.create(vault_id, auth=_bearer(f"https://mcp.example.com/{i}"))
        for i in range(20)
    ]

    with pytest.raises(anthropic.BadRequestError, match="20 active credentials"):
        client.beta.vaults.credentials.create(vault_id, auth=_bearer("https://mcp.example.com/21"))
    client.beta.vaults.credentials.archive(made[0].id, vault_id=vault_id)
    client.beta.vaults.credentials.create(vault_id, auth=_bearer("https://mcp.example.com/21"))
    listed = client.beta.vaults.credentials.list(vault_id, limit=100)
    assert len(listed.data) == 20 and listed.next_page is None
    assert len(client.beta.vaults.credentials.list(vault_id, include_archived=True, limit=100).data) == 21


def test_archived_vault_takes_no_credentials(client: anthropic.Anthropic) -> None:
    vault_id = _vault(client)
    client.beta.vaults.archive(vault_id)

    with pytest.raises(anthropic.BadRequestError, match="is archived"):
        client.beta.vaults.credentials.create(vault_id, auth=_bearer())


def test_delete_and_not_found(client: anthropic.Anthropic) -> None:
    vault_id = _vault(client)
    credential = client.beta.vaults.credentials.create(vault_id, auth=_bearer())

    deleted = client.beta.vaults.credentials.delete(credential.id, vault_id=vault_id)

    assert (deleted.id, deleted.type) == (credential.id, "vault_credential_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.credentials.retrieve(credential.id, vault_id=vault_id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.credentials.list("vlt_missing")
    other = _vault(client)
    kept = client.beta.vaults.credentials.create(vault_id, auth=_bearer())
    with pytest.raises(anthropic.NotFoundError):  # addressed through another vault
        client.beta.vaults.credentials.retrieve(kept.id, vault_id=other)


FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            {"type": "static_bearer", "token": "t", "mcp_server_url": "ftp://x.example.com"},
            "http:// or https://",
        ),
        ({"type": "static_bearer", "token": "t", "mcp_server_url": "https://"}, "must name a host"),
        ({"type": "static_bearer", "token": "", "mcp_server_url": "https://x.example.com"}, "token"),
        ({"type": "static_bearer", "token": "a\r\nX-Evil: 1", "mcp_server_url": "https://x.io"}, "control"),
        ({"type": "static_bearer", "tokn": "t", "mcp_server_url": "https://x.example.com"}, "auth"),
        ({"type": "password", "token": "t"}, "auth"),
        (
            {
                "type": "mcp_oauth",
                "access_token": "a",
                "mcp_server_url": "https://x.io",
                "expires_at": "2001-01-01",
            },
            "must be in the future",
        ),
        (
            {
                "type": "mcp_oauth",
                "access_token": "a",
                "mcp_server_url": "https://x.io",
                "expires_at": FUTURE,
                "refresh": {
                    "client_id": "c",
                    "refresh_token": "r",
                    "token_endpoint": "not a url",
                    "token_endpoint_auth": {"type": "none"},
                },
            },
            "token_endpoint",
        ),
        (_env("1BAD"), "environment variable name"),
        (_env(networking={"type": "limited", "allowed_hosts": ["https://api.github.com"]}), "scheme"),
        (_env(networking={"type": "limited", "allowed_hosts": ["api.github.com:443"]}), "port"),
        (_env(networking={"type": "limited", "allowed_hosts": ["2001:db8::1"]}), "IPv6"),
        (_env(networking={"type": "limited", "allowed_hosts": []}), "allowed_hosts"),
        (
            _env(networking={"type": "limited", "allowed_hosts": [f"h{i}.io" for i in range(17)]}),
            "allowed_hosts",
        ),
        (_env(injection_location={"header": False, "body": False}), "at least one of header and body"),
    ],
)
def test_bad_credential_input_is_a_400(
    client: anthropic.Anthropic, http: httpx.Client, auth: dict[str, Any], message: str
) -> None:
    response = http.post(f"/v1/vaults/{_vault(client)}/credentials", json={"auth": auth})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]
    for value in (auth.get("token"), auth.get("secret_value"), auth.get("access_token")):
        assert not value or len(value) < 3 or value not in response.text
