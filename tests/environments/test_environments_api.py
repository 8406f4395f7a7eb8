"""/v1/environments through the real SDK (strict response validation) and raw HTTP, on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest

from app.db.engine import Database
from app.environments import service
from app.errors import InvalidRequest, NotFound

LIMITED: Any = {
    "type": "limited",
    "allow_mcp_servers": True,
    "allow_package_managers": True,
    "allowed_hosts": ["api.example.com"],
}
PACKAGES = {
    "apt": ["string"],
    "cargo": ["string"],
    "gem": ["string"],
    "go": ["string"],
    "npm": ["string"],
    "pip": ["pandas", "numpy"],
    "type": "packages",
}
EMPTY_PACKAGES = {"type": "packages", "apt": [], "cargo": [], "gem": [], "go": [], "npm": [], "pip": []}


def _message(exc: pytest.ExceptionInfo[anthropic.APIStatusError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


def test_create_with_only_a_name_fills_defaults(http: httpx.Client) -> None:
    response = http.post("/v1/environments?beta=true", json={"name": "python-data-analysis"})

    body = response.json()
    assert response.status_code == 200
    assert body["id"].startswith("env_") and body["type"] == "environment"
    assert body["config"] == {
        "type": "cloud",
        "networking": {"type": "unrestricted"},
        "packages": EMPTY_PACKAGES,
    }
    assert body["description"] == "" and body["metadata"] == {} and body["scope"] == "organization"
    assert body["state"] == "active" and body["archived_at"] is None


def test_sdk_all_params_create_and_update(client: anthropic.Anthropic) -> None:
    config: Any = {"type": "cloud", "networking": LIMITED, "packages": PACKAGES}
    env = client.beta.environments.create(
        name="python-data-analysis",
        config=config,
        description="Python environment with data-analysis packages.",
        metadata={"foo": "string"},
        scope="organization",
        betas=["string"],
    )
    updated = client.beta.environments.update(
        env.id,
        config=config,
        description="description",
        metadata={"foo": "string"},
        name="x",
        scope="organization",
    )

    assert env.config.model_dump() == {"type": "cloud", "networking": LIMITED, "packages": PACKAGES}
    assert updated.name == "x" and updated.description == "description"
    assert client.beta.environments.update(env.id).name == "x"
    assert client.beta.environments.retrieve(env.id).config == updated.config


def test_self_hosted(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name="workers", config={"type": "self_hosted"})

    assert env.config.type == "self_hosted"
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.environments.update(env.id, config={"type": "cloud"})
    assert exc.value.error_code == "invalid_config_type_change"
    assert _message(exc).startswith(
        "config.type: cannot change the config type from 'self_hosted' to 'cloud'"
    )


def test_update_merges_config_and_patches_metadata(client: anthropic.Anthropic) -> None:
    config: Any = {"type": "cloud", "networking": LIMITED, "packages": {"pip": ["pandas"]}}
    env = client.beta.environments.create(
        name="merge", config=config, metadata={"a": "1", "b": "2", "c": "3"}
    )

    hosts = client.beta.environments.update(
        env.id,
        config={"type": "cloud", "networking": {"type": "limited", "allowed_hosts": ["*.Example.COM"]}},
    )
    packages = client.beta.environments.update(
        env.id, config={"type": "cloud", "packages": {"npm": ["express@4.18.0"]}}
    )
    meta = client.beta.environments.update(env.id, metadata={"a": None, "b": "", "d": "4"}, description=None)

    assert hosts.config.networking.model_dump() == {**LIMITED, "allowed_hosts": ["*.Example.COM"]}  # type: ignore[union-attr]
    assert packages.config.packages.pip == ["pandas"] and packages.config.packages.npm == ["express@4.18.0"]  # type: ignore[union-attr]
    assert packages.config.networking.type == "limited"  # type: ignore[union-attr]
    assert meta.metadata == {"c": "3", "d": "4"} and meta.description == ""


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        (
            {
                "config": {
                    "type": "cloud",
                    "networking": {"type": "limited", "allowed_hosts": ["ok.com", "https://api.example.com"]},
                }
            },
            "config.networking.allowed_hosts[1]: 'https://api.example.com' must be a bare hostname",
            None,
        ),
        (
            {
                "config": {
                    "type": "cloud",
                    "networking": {"type": "limited", "allowed_hosts": ["api.example.com:443"]},
                }
            },
            "config.networking.allowed_hosts[0]: 'api.example.com:443' must be a bare hostname without a",
            None,
        ),
        (
            {
                "config": {
                    "type": "cloud",
                    "networking": {"type": "limited", "allowed_hosts": ["example.com/v1"]},
                }
            },
            "config.networking.allowed_hosts[0]: 'example.com/v1' must be a bare hostname without a path",
            None,
        ),
        *(
            (
                {
                    "config": {
                        "type": "cloud",
                        "networking": {"type": "limited", "allowed_hosts": ["ok.com", entry]},
                    }
                },
                f"config.networking.allowed_hosts[1]: {entry!r} {problem}",
                None,
            )
            for entry, problem in [
                ("*.com", "is a wildcard over the public suffix 'com'"),
                ("*.ORG", "is a wildcard over the public suffix 'org'"),
                ("*.co.uk", "is a wildcard over the public suffix 'co.uk'"),
                ("*.github.io", "is a wildcard over the public suffix 'github.io'"),
                ("169.254.169.254", "is a link-local address"),
                ("100.100.100.200", "is a cloud metadata address"),
                ("127.0.0.1", "is a loopback address"),
                ("[::1]", "is a loopback address"),
                ("::ffff:169.254.169.254", "is a link-local address"),
                ("0.0.0.0", "is an unspecified address"),
                ("localhost", "is a loopback name"),
                ("*.10.1.2.3", "must not be a wildcard over an IP address"),
            ]
        ),
        (
            {"config": {"type": "cloud", "networking": {"type": "limited", "allowed_hosts": [""]}}},
            "config.networking.allowed_hosts[0]: '' must not be empty",
            None,
        ),
        (
            {"config": {"type": "cloud", "networking": {"type": "limited"}, "packages": {"pip": ["pandas"]}}},
            "config.packages: packages under limited networking require config.networking.allow_package",
            None,
        ),
        (
            {"config": {"type": "cloud", "networking": {"type": "open"}}},
            "config.networking.type: Input should be",
            None,
        ),
        ({"config": {"type": "docker"}}, "config.type: Input should be 'cloud' or 'self_hosted'", None),
        (
            {"config": {"type": "self_hosted", "packages": {"pip": ["x"]}}},
            "config.packages: not supported for self_hosted",
            None,
        ),
        ({"scope": "account"}, "scope: 'account' is not supported", None),
        ({"name": ""}, "name: String should have at least 1 character", None),
        (
            {"metadata": {"k": "v" * 513}},
            "metadata.k: values must be at most 512 characters",
            "invalid_metadata",
        ),
    ],
)
def test_create_rejects(http: httpx.Client, body: dict[str, Any], message: str, code: str | None) -> None:
    response = http.post("/v1/environments", json={"name": "bad", **body})

    error = response.json()["error"]
    assert response.status_code == 400 and error["type"] == "invalid_request_error"
    assert error["message"].startswith(message), error["message"]
    assert error.get("details", {}).get("error_code") == code


def test_update_names_the_refused_entry_and_keeps_the_stored_list(
    client: anthropic.Anthropic, http: httpx.Client
) -> None:
    config: Any = {"type": "cloud", "networking": {**LIMITED, "allowed_hosts": ["*.example.co.uk"]}}
    env = client.beta.environments.create(name="hosts", config=config)
    networking = {"type": "limited", "allowed_hosts": ["10.0.0.7", "*.example.co.uk", "*.co.uk"]}

    refused = http.post(
        f"/v1/environments/{env.id}", json={"config": {"type": "cloud", "networking": networking}}
    )
    stored = client.beta.environments.retrieve(env.id)

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"] == (
        "config.networking.allowed_hosts[2]: '*.co.uk' is a wildcard over the public suffix 'co.uk': "
        "name a registrable domain"
    )
    assert stored.config.networking.allowed_hosts == ["*.example.co.uk"]  # type: ignore[union-attr]


def test_empty_allow_list_is_accepted(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(
        name="closed", config={"type": "cloud", "networking": {"type": "limited"}}
    )

    assert env.config.networking.model_dump() == {  # type: ignore[union-attr]
        "type": "limited",
        "allowed_hosts": [],
        "allow_mcp_servers": False,
        "allow_package_managers": False,
    }


def test_unknown_environment_is_a_404(client: anthropic.Anthropic, http: httpx.Client) -> None:
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.beta.environments.retrieve("env_011CZkZ9X2dpNyB7HsEFoRfW")
    raw = http.delete("/v1/environments/env_missing")

    assert exc.value.error_code == "environment_not_found"
    assert raw.status_code == 404 and raw.headers["request-id"] == raw.json()["request_id"]


def test_archive_and_delete(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name="short-lived")

    archived = client.beta.environments.archive(env.id)
    again = client.beta.environments.archive(env.id)
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.environments.update(env.id, name="nope")
    deleted = client.beta.environments.delete(env.id)

    assert archived.archived_at is not None and again.archived_at == archived.archived_at
    assert archived.model_dump()["state"] == "archived"
    assert exc.value.error_code == "environment_archived"
    assert deleted.model_dump() == {"id": env.id, "type": "environment_deleted"}
    with pytest.raises(anthropic.NotFoundError):
        client.beta.environments.retrieve(env.id)


def test_list_pages_and_hides_archived(client: anthropic.Anthropic, http: httpx.Client) -> None:
    ids = [client.beta.environments.create(name=f"page-{i}").id for i in range(5)]
    client.beta.environments.archive(ids[2])

    visible = [env.id for env in client.beta.environments.list(limit=2)]
    everything = [env.id for env in client.beta.environments.list(include_archived=True, limit=2)]
    page = http.get("/v1/environments", params={"limit": 1, "include_archived": "true"}).json()

    newest_first = ids[::-1]
    assert [i for i in visible if i in ids] == [i for i in newest_first if i != ids[2]]
    assert [i for i in everything if i in ids] == newest_first
    assert len(page["data"]) == 1 and page["next_page"].startswith("page_")
    bad = http.get("/v1/environments", params={"page": "page"})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "invalid page cursor"


def test_docs_curl_flow(http: httpx.Client) -> None:
    created = http.post(
        "/v1/environments?beta=true",
        json={
            "name": "data-env",
            "config": {
                "type": "cloud",
                "networking": {**LIMITED, "allowed_hosts": ["pypi.org"]},
                "packages": {"pip": ["pandas==2.2.0"]},
            },
        },
    )
    env_id = created.json()["id"]
    listed = http.get("/v1/environments?beta=true")
    retrieved = http.get(f"/v1/environments/{env_id}?beta=true")
    archived = http.post(f"/v1/environments/{env_id}/archive?beta=true")
    deleted = http.delete(f"/v1/environments/{env_id}?beta=true")

    assert created.status_code == 200 and created.json()["config"]["packages"]["pip"] == ["pandas==2.2.0"]
    assert env_id in [env["id"] for env in listed.json()["data"]]
    assert retrieved.json() == created.json()
    assert archived.json()["state"] == "archived"
    assert deleted.json() == {"type": "environment_deleted", "id": env_id}


# --- the interface sessions use -----------------------------------------------------------------


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


async def _for_session(database: Database, environment_id: str) -> Any:
    async with database.read() as db:
        return await service.get_for_session(db, environment_id)


async def test_get_for_session(client: anthropic.Anthropic, database: Database) -> None:
    env = client.beta.environments.create(name="for-sessions")
    usable = await _for_session(database, env.id)
    client.beta.environments.archive(env.id)

    assert usable.id == env.id and usable.config["type"] == "cloud"
    with pytest.raises(InvalidRequest, match=f"^Environment {env.id} is archived.$") as archived:
        await _for_session(database, env.id)
    assert archived.value.details == {"error_code": "environment_archived"}
    with pytest.raises(NotFound) as missing:
        await _for_session(database, "env_missing")
    assert missing.value.details == {"error_code": "environment_not_found"}
