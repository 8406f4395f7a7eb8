"""github_repository resources on the API side: the URL (under ``MAS_GITHUB_BASE_URL``), the mount
path (under /workspace), and the token, kept only sealed (``Session.resource_tokens``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.db.models import Session
from app.errors import InvalidRequest
from app.ids import new_id
from app.sessions.resource_schemas import GitHubRepositoryParams, GitHubRepositoryResource, stored

WORKSPACE = "/workspace"
MAX_REPOSITORIES = 20
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

# (resource id, token) -> the sealed token stored in the session row.
Sealer = Callable[[str, str], str]


@dataclass(frozen=True)
class RepoContext:
    base_url: str
    seal: Sealer


def parse_url(raw: str, base_url: str) -> tuple[str, str]:
    """(``<base>/<owner>/<repo>``, repo name) of a repository URL; anything else is a 400."""
    base = base_url.rstrip("/")
    example = f"{base}/<owner>/<repo>"
    if not raw.startswith(base + "/"):
        raise InvalidRequest(f"url: {raw!r} is not a repository URL of the form {example}")
    rest = raw[len(base) + 1 :].rstrip("/").removesuffix(".git")
    parts = rest.split("/")
    if len(parts) != 2 or not all(_NAME.match(p) and p not in (".", "..") for p in parts):
        raise InvalidRequest(f"url: {raw!r} is not a repository URL of the form {example}")
    return f"{base}/{parts[0]}/{parts[1]}", parts[1]


def mount_path(raw: str | None, repo: str) -> str:
    if raw is None or raw.strip() == "":
        return f"{WORKSPACE}/{repo}"
    if any(ord(c) < 32 for c in raw) or "\\" in raw or len(raw) > 1024:
        raise InvalidRequest(f'mount_path "{raw[:200]}" is not a valid path')
    segments = [s for s in raw.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidRequest(f'mount_path "{raw}" escapes {WORKSPACE}/')
    path = "/" + "/".join(segments)
    if not raw.startswith("/"):
        path = WORKSPACE + path
    if not path.startswith(WORKSPACE + "/"):
        raise InvalidRequest(f'mount_path "{raw}" must be a directory under {WORKSPACE}/')
    return path


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def attach(
    row: Session,
    params: GitHubRepositoryParams,
    existing: list[GitHubRepositoryResource],
    context: RepoContext,
    now: datetime,
) -> GitHubRepositoryResource:
    if len(existing) >= MAX_REPOSITORIES:
        raise InvalidRequest(f"resources: a session can hold at most {MAX_REPOSITORIES} repositories")
    _, repo = parse_url(params.url, context.base_url)
    path = mount_path(params.mount_path, repo)
    for other in existing:
        if _overlaps(path, other.mount_path):
            raise InvalidRequest(f"mount_path overlaps another resource: {path}")
    resource = GitHubRepositoryResource(
        id=new_id("sesrsc"),
        url=params.url,
        mount_path=path,
        checkout=params.checkout,
        created_at=now,
        updated_at=now,
    )
    if params.authorization_token:
        seal_token(row, resource.id, params.authorization_token, context)
    row.resources = [*row.resources, stored(resource)]
    return resource


def seal_token(row: Session, resource_id: str, token: str, context: RepoContext) -> None:
    row.resource_tokens = {**(row.resource_tokens or {}), resource_id: context.seal(resource_id, token)}


class TokenBox(Protocol):
    """Seals secrets for one owner (what vaults' ``SecretBox`` does)."""

    def seal(self, owner: str, secret: Mapping[str, str]) -> str: ...
    def open(self, owner: str, token: str) -> dict[str, str]: ...


def sealer(box: TokenBox) -> Sealer:
    return lambda resource_id, token: box.seal(resource_id, {"authorization_token": token})


def unsealer(box: TokenBox) -> Callable[[str, str], str]:
    return lambda resource_id, sealed: box.open(resource_id, sealed)["authorization_token"]
