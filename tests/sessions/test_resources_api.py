"""Session file resources through the strict SDK: mount path rules, session-owned copies, the
resource endpoints, limits, and every bad request a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsGitHubRepositoryResource as RepositoryResource

from tests.conftest import make_settings
from tests.support.clients import API_KEY, strict_client
from tests.support.factories import MODEL, resource_id
from tests.support.server import ServerThread


def _agent_env(client: anthropic.Anthropic, config: dict[str, Any] | None = None) -> tuple[str, str]:
    agent = client.beta.agents.create(name="res", model=MODEL)
    env = client.beta.environments.create(name=f"res-{agent.id[-8:]}", config=config or {"type": "cloud"})  # type: ignore[arg-type]
    return agent.id, env.id


def _upload(client: anthropic.Anthropic, name: str = "in.txt", data: bytes = b"data") -> str:
    return client.beta.files.upload(file=(name, data, "text/plain")).id


def _create(client: anthropic.Anthropic, resources: list[dict[str, Any]]) -> Any:
    agent_id, env_id = _agent_env(client)
    return client.beta.sessions.create(agent=agent_id, environment_id=env_id, resources=resources)  # type: ignore[arg-type]


PATHS = [
    (None, "/mnt/session/uploads/{id}"),
    ("probe.txt", "/mnt/session/uploads/probe.txt"),
    ("/probe.txt", "/mnt/session/uploads/probe.txt"),
    ("/tmp/probe.txt", "/mnt/session/uploads/tmp/probe.txt"),
    ("a//b/./c.txt", "/mnt/session/uploads/a/b/c.txt"),
    ("/mnt/session/uploads/kept.txt", "/mnt/session/uploads/kept.txt"),
]


@pytest.mark.parametrize(("given", "expected"), PATHS)
def test_mount_paths_are_rooted_under_uploads(
    client: anthropic.Anthropic, given: str | None, expected: str
) -> None:
    file_id = _upload(client)
    resource: dict[str, Any] = {"type": "file", "file_id": file_id}
    if given is not None:
        resource["mount_path"] = given
    session = _create(client, [resource])
    (mounted,) = session.resources
    assert mounted.type == "file" and mounted.id.startswith("sesrsc_")
    assert mounted.mount_path == expected.format(id=file_id)
    assert mounted.file_id != file_id  # the session's own copy
    copy = client.beta.files.retrieve_metadata(mounted.file_id)
    assert copy.scope is not None and copy.scope.id == session.id and copy.scope.type == "session"
    assert copy.downloadable is False and copy.filename == "in.txt"


BAD = [
    (
        [{"type": "file", "file_id": "F", "mount_path": "../probe.txt"}],
        400,
        'mount path "../probe.txt" escapes /uploads/',
    ),
    (
        [
            {"type": "file", "file_id": "F", "mount_path": "dupe.txt"},
            {"type": "file", "file_id": "F", "mount_path": "/dupe.txt"},
        ],
        400,
        "mount_path overlaps another resource: /uploads/dupe.txt",
    ),
    (
        [
            {"type": "file", "file_id": "F", "mount_path": "dir"},
            {"type": "file", "file_id": "F", "mount_path": "dir/x"},
        ],
        400,
        "mount_path overlaps another resource: /uploads/dir/x",
    ),
    ([{"type": "file", "file_id": "file_nope"}], 404, "file 'file_nope' not found"),
    ([{"type": "file"}], 400, "resources[0].file.file_id: Field required"),
    ([{"type": "volume"}], 400, "resources[0]"),
    (
        [{"type": "memory_store", "memory_store_id": "memstore_x"}],
        404,
        "resources[0].memory_store_id: Memory store memstore_x not found.",
    ),
]


@pytest.mark.parametrize(("resources", "status", "message"), BAD)
def test_bad_resources_at_create(
    client: anthropic.Anthropic,
    http: httpx.Client,
    resources: list[dict[str, Any]],
    status: int,
    message: str,
) -> None:
    file_id = _upload(client)
    # The parameters are shared by both database runs: fill in this run's file id on copies.
    resources = [{**r, "file_id": file_id} if r.get("file_id") == "F" else dict(r) for r in resources]
    agent_id, env_id = _agent_env(client)
    response = http.post(
        "/v1/sessions", json={"agent": agent_id, "environment_id": env_id, "resources": resources}
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


def test_self_hosted_sessions_reject_file_resources(client: anthropic.Anthropic, http: httpx.Client) -> None:
    file_id = _upload(client)
    agent_id, env_id = _agent_env(client, {"type": "self_hosted"})
    body = {"agent": agent_id, "environment_id": env_id, "resources": [{"type": "file", "file_id": file_id}]}
    response = http.post("/v1/sessions", json=body)
    assert response.status_code == 400
    assert "not supported in self_hosted environments" in response.json()["error"]["message"]


def test_resource_endpoints(client: anthropic.Anthropic) -> None:
    first, second = _upload(client, "a.txt"), _upload(client, "b.txt")
    session = _create(client, [{"type": "file", "file_id": first, "mount_path": "a.txt"}])
    added = client.beta.sessions.resources.add(session.id, type="file", file_id=second, mount_path="b.txt")
    assert added.mount_path == "/mnt/session/uploads/b.txt"
    listed = client.beta.sessions.resources.list(session.id)
    first_id = resource_id(session.resources[0])
    assert [resource_id(r) for r in listed.data] == [first_id, added.id] and listed.next_page is None
    paged = client.beta.sessions.resources.list(session.id, limit=1)
    assert [resource_id(r) for r in paged.data] == [resource_id(session.resources[0])] and paged.next_page
    rest = client.beta.sessions.resources.list(session.id, limit=1, page=paged.next_page)
    assert [resource_id(r) for r in rest.data] == [added.id] and rest.next_page is None
    assert client.beta.sessions.resources.retrieve(added.id, session_id=session.id) == added
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.sessions.resources.update(added.id, session_id=session.id, authorization_token="t")
    assert "token rotation" in caught.value.message
    with pytest.raises(anthropic.BadRequestError) as overlap:
        client.beta.sessions.resources.add(session.id, type="file", file_id=second, mount_path="a.txt")
    assert "overlaps" in overlap.value.message

    deleted = client.beta.sessions.resources.delete(added.id, session_id=session.id)
    assert (deleted.id, deleted.type) == (added.id, "session_resource_deleted")
    remaining = client.beta.sessions.retrieve(session.id).resources
    assert [resource_id(r) for r in remaining] == [resource_id(session.resources[0])]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.resources.retrieve(added.id, session_id=session.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata(added.file_id)


def test_only_files_can_be_added_later(client: anthropic.Anthropic, http: httpx.Client) -> None:
    session = _create(client, [])
    body = {"type": "github_repository", "url": "https://github.com/o/r"}
    response = http.post(f"/v1/sessions/{session.id}/resources", json=body)
    assert response.status_code == 400
    assert "only file resources can be added" in response.json()["error"]["message"]
    response = http.post(f"/v1/sessions/{session.id}/resources", json={"type": "file"})
    assert response.status_code == 400 and "file_id" in response.json()["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.resources.add("sesn_nope", type="file", file_id="file_x")


def test_deleting_a_session_deletes_its_files_not_the_uploads(client: anthropic.Anthropic) -> None:
    upload = _upload(client)
    session = _create(client, [{"type": "file", "file_id": upload}])
    copy = session.resources[0].file_id
    assert [f.id for f in client.beta.files.list(scope_id=session.id).data] == [copy]
    client.beta.sessions.delete(session.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata(copy)
    assert client.beta.files.retrieve_metadata(upload).id == upload
    assert client.beta.files.list(scope_id=session.id).data == []


# --- github_repository resources (cloning itself: tests/files/test_repositories.py) ----------

NOWHERE = "http://127.0.0.1:9"  # the discard port: a clone attempt fails at once


@pytest.fixture(scope="module")
def repo_client(database_url: str) -> Iterator[anthropic.Anthropic]:
    server = ServerThread(make_settings(database_url, github_base_url=NOWHERE)).start()
    try:
        with strict_client(server.url, API_KEY) as sdk:
            yield sdk
    finally:
        server.stop()


def _repo_session(client: anthropic.Anthropic, **repo: Any) -> Any:
    return _create(client, [{"type": "github_repository", **repo}])


def test_repository_resources_are_echoed_without_their_token(repo_client: anthropic.Anthropic) -> None:
    session = _repo_session(
        repo_client,
        url=f"{NOWHERE}/acme/widgets",
        authorization_token="secret-token",
        checkout={"type": "branch", "name": "dev"},
    )
    (repo,) = session.resources
    assert (repo.type, repo.url, repo.mount_path) == (
        "github_repository",
        f"{NOWHERE}/acme/widgets",
        "/workspace/widgets",
    )
    assert repo.checkout is not None and repo.checkout.type == "branch"
    assert "secret-token" not in session.model_dump_json()
    listed = repo_client.beta.sessions.resources.list(session.id)
    assert "secret-token" not in listed.model_dump_json()
    rotated = repo_client.beta.sessions.resources.update(
        repo.id, session_id=session.id, authorization_token="new"
    )
    assert isinstance(rotated, RepositoryResource) and isinstance(repo, RepositoryResource)
    assert rotated.id == repo.id and rotated.updated_at >= repo.updated_at
    with pytest.raises(anthropic.BadRequestError) as caught:
        repo_client.beta.sessions.resources.delete(repo.id, session_id=session.id)
    assert "stay for the session's life" in caught.value.message


BAD_REPOS = [
    ({"url": "https://github.com/acme/widgets"}, "is not a repository URL of the form"),
    ({"url": f"{NOWHERE}/acme"}, "is not a repository URL of the form"),
    ({"url": f"{NOWHERE}/acme/widgets/tree/main"}, "is not a repository URL of the form"),
    ({"url": "git@github.com:acme/widgets.git"}, "is not a repository URL of the form"),
    (
        {"url": f"{NOWHERE}/acme/widgets", "mount_path": "/etc/widgets"},
        "must be a directory under /workspace/",
    ),
    ({"url": f"{NOWHERE}/acme/widgets", "mount_path": "/workspace/../etc"}, "escapes /workspace/"),
    ({"url": f"{NOWHERE}/acme/widgets", "checkout": {"type": "tag", "name": "v1"}}, "checkout"),
]


@pytest.mark.parametrize(("repo", "message"), BAD_REPOS)
def test_bad_repository_resources(
    repo_client: anthropic.Anthropic, repo: dict[str, Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        _repo_session(repo_client, **repo)
    assert message in caught.value.message


def test_overlapping_repositories_and_self_hosted(
    repo_client: anthropic.Anthropic, http: httpx.Client
) -> None:
    url = f"{NOWHERE}/acme/widgets"
    with pytest.raises(anthropic.BadRequestError) as caught:
        _create(
            repo_client,
            [
                {"type": "github_repository", "url": url},
                {"type": "github_repository", "url": f"{NOWHERE}/other/widgets"},
            ],
        )
    assert "mount_path overlaps another resource: /workspace/widgets" in caught.value.message
    agent_id, env_id = _agent_env(repo_client, {"type": "self_hosted"})
    with pytest.raises(anthropic.BadRequestError) as hosted:
        repo_client.beta.sessions.create(
            agent=agent_id, environment_id=env_id, resources=[{"type": "github_repository", "url": url}]
        )
    assert "not supported in self_hosted environments" in hosted.value.message
