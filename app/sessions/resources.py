"""A session's resources: file mounts (at create or added later), listed, retrieved, removed.

Resources live in the session row (``Session.resources``, the objects clients see), so the
sessions package stays their one owner. Each file resource holds a session-owned copy of the
upload (its own file id, scoped to the session); removing the resource deletes that copy. A
memory store is attached at create only, at ``/mnt/memory/<slug of its name>``, with its name and
description snapshotted; it has no id, so it can be listed but not retrieved or removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Session
from app.errors import InvalidRequest, NotFound
from app.files import service as files
from app.ids import new_id
from app.memory_stores import service as memory_stores
from app.memory_stores.paths import mount_path as memory_mount_path
from app.sessions import mount_paths
from app.sessions import repositories as repos
from app.sessions.repositories import RepoContext
from app.sessions.resource_schemas import (
    FileResource,
    FileResourceParams,
    GitHubRepositoryParams,
    GitHubRepositoryResource,
    MemoryStoreParams,
    MemoryStoreResource,
    ResourceDeleted,
    ResourcePage,
    ResourceParams,
    ResourceUpdate,
    SessionResource,
    stored,
)
from app.shared.pagination import Cursor, decode_cursor, encode_cursor
from app.skills.discovery import RepoSkills

MAX_FILES = 500
MAX_MEMORY_STORES = 8
_PARAMS: TypeAdapter[ResourceParams] = TypeAdapter(ResourceParams)
_RESOURCE: TypeAdapter[SessionResource] = TypeAdapter(SessionResource)


def parse_params(raw: Sequence[dict[str, JsonValue]], field: str = "resources") -> list[ResourceParams]:
    """Resource params as the request body holds them, checked (errors name the item and field)."""
    parsed = []
    for i, item in enumerate(raw):
        try:
            parsed.append(_PARAMS.validate_python(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise InvalidRequest(f"{field}[{i}]{'.' + where if where else ''}: {error['msg']}") from None
    return parsed


def _check_supported(params: ResourceParams, environment_type: str) -> None:
    # A self-hosted client's worker mounts memory stores itself; other resources need our sandbox.
    if environment_type == "self_hosted" and params.type != "memory_store":
        raise InvalidRequest(
            f"resources: {params.type} resources are not supported in self_hosted environments"
        )


def _resources(row: Session) -> list[SessionResource]:
    return [_RESOURCE.validate_python(item) for item in row.resources]


def repositories(row: Session) -> list[GitHubRepositoryResource]:
    return [r for r in _resources(row) if isinstance(r, GitHubRepositoryResource)]


def memory_mounts(row: Session) -> list[MemoryStoreResource]:
    return [r for r in _resources(row) if isinstance(r, MemoryStoreResource)]


def repo_skills(row: Session) -> RepoSkills | None:
    """The skills found in the session's repositories (None: not scanned yet)."""
    return RepoSkills.model_validate(row.repo_skills) if row.repo_skills is not None else None


def record_repo_skills(row: Session, found: RepoSkills) -> None:
    """Keep the first scan: what the system prompt lists never changes during the session."""
    if row.repo_skills is None:
        row.repo_skills = found.model_dump()


async def _attach_memory_store(db: AsyncSession, row: Session, params: MemoryStoreParams, where: str) -> None:
    attached = memory_mounts(row)
    if len(attached) >= MAX_MEMORY_STORES:
        raise InvalidRequest(f"{where}: a session can mount at most {MAX_MEMORY_STORES} memory stores")
    try:
        store = await memory_stores.get(db, params.memory_store_id)
    except NotFound as exc:
        raise NotFound(f"{where}.memory_store_id: {exc.message}") from None
    if store.archived_at is not None:
        raise InvalidRequest(f"{where}.memory_store_id: memory store {store.id} is archived")
    path = memory_mount_path(store.name)
    for other in attached:
        if other.memory_store_id == store.id:
            raise InvalidRequest(f"{where}.memory_store_id: memory store {store.id} is attached twice")
        if other.mount_path == path:
            raise InvalidRequest(
                f"{where}: memory stores {other.memory_store_id} and {store.id} would both mount at {path} "
                "(the mount path is the store's name, lowercased, other characters made '-'); rename one"
            )
    resource = MemoryStoreResource(
        memory_store_id=store.id,
        access=params.access or "read_write",
        description=store.description,
        instructions=params.instructions,
        mount_path=path,
        name=store.name,
    )
    row.resources = [*row.resources, stored(resource)]


def _mount_paths(row: Session) -> list[str]:
    return [r.mount_path for r in _resources(row) if isinstance(r, FileResource)]


async def _attach_file(
    db: AsyncSession, row: Session, params: FileResourceParams, now: datetime
) -> FileResource:
    mounted = _mount_paths(row)
    if len(mounted) >= MAX_FILES:
        raise InvalidRequest(f"resources: a session can mount at most {MAX_FILES} files")
    path = mount_paths.upload_mount_path(params.mount_path, params.file_id)
    mount_paths.check_overlaps(path, mounted)
    copy = await files.session_copy(db, params.file_id, row.id)
    resource = FileResource(
        id=new_id("sesrsc"), file_id=copy.id, mount_path=path, created_at=now, updated_at=now
    )
    row.resources = [*row.resources, stored(resource)]
    return resource


async def attach_at_create(
    db: AsyncSession,
    row: Session,
    raw: Sequence[dict[str, JsonValue]],
    environment_type: str,
    repo_context: RepoContext | None,
) -> None:
    """The ``resources`` of a new session (checked and mounted in order; any error is a 400).
    Without a ``repo_context`` (sessions a deployment starts) repositories are refused."""
    now = utcnow()
    for i, params in enumerate(parse_params(raw)):
        _check_supported(params, environment_type)
        if isinstance(params, MemoryStoreParams):
            await _attach_memory_store(db, row, params, f"resources[{i}]")
        elif isinstance(params, FileResourceParams):
            await _attach_file(db, row, params, now)
        elif isinstance(params, GitHubRepositoryParams):
            if repo_context is None:
                raise InvalidRequest("resources: github_repository resources cannot be used here yet")
            repos.attach(row, params, repositories(row), repo_context, now)


async def add(
    db: AsyncSession, row: Session, raw: dict[str, JsonValue], environment_type: str
) -> FileResource:
    """Mount one more file in a session (it appears in its sandbox by the next tool call)."""
    if row.status == "terminated" or row.archived_at is not None:
        raise InvalidRequest(f"Session {row.id} is {'archived' if row.archived_at else 'terminated'}")
    if raw.get("type") != "file":
        raise InvalidRequest("only file resources can be added to an existing session")
    (params,) = parse_params([raw], field="resource")
    _check_supported(params, environment_type)
    if not isinstance(params, FileResourceParams):
        raise InvalidRequest("only file resources can be added to an existing session")
    return await _attach_file(db, row, params, utcnow())


def _find(row: Session, resource_id: str) -> SessionResource:
    for resource in _resources(row):
        if not isinstance(resource, MemoryStoreResource) and resource.id == resource_id:
            return resource
    raise NotFound(f"resource {resource_id!r} not found in session {row.id}")


def get(row: Session, resource_id: str) -> SessionResource:
    return _find(row, resource_id)


def update(
    row: Session, resource_id: str, params: ResourceUpdate, repo_context: RepoContext
) -> SessionResource:
    """Rotate a repository's token (it is used from the next fetch on)."""
    resource = _find(row, resource_id)
    if not isinstance(resource, GitHubRepositoryResource):
        raise InvalidRequest("only github_repository resources support token rotation")
    repos.seal_token(row, resource_id, params.authorization_token, repo_context)
    updated = resource.model_copy(update={"updated_at": utcnow()})
    row.resources = [
        stored(updated) if item["type"] != "memory_store" and item["id"] == resource_id else item
        for item in row.resources
    ]
    return updated


def list_page(row: Session, limit: int | None, page: str | None) -> ResourcePage:
    """In the order they were added; no ``limit`` lists all."""
    items = _resources(row)
    cursor = decode_cursor(page, "asc")
    start = int(cursor.key[0]) if cursor and cursor.key and isinstance(cursor.key[0], int) else 0
    end = len(items) if limit is None else start + limit
    next_page = encode_cursor(Cursor("asc", (end,))) if end < len(items) else None
    return ResourcePage(data=items[start:end], next_page=next_page)


async def delete(db: AsyncSession, row: Session, resource_id: str) -> ResourceDeleted:
    resource = _find(row, resource_id)
    if isinstance(resource, GitHubRepositoryResource):
        raise InvalidRequest(
            "github_repository resources stay for the session's life (only their token rotates)"
        )
    row.resources = [
        item for item in row.resources if item["type"] == "memory_store" or item["id"] != resource_id
    ]
    if isinstance(resource, FileResource):
        await files.delete_if_exists(db, resource.file_id)
    return ResourceDeleted(id=resource_id)


async def file_mounts(db: AsyncSession, row: Session) -> list[tuple[str, str]]:
    """(path under the uploads directory, content digest) of each mounted file."""
    mounted = [r for r in _resources(row) if isinstance(r, FileResource)]
    digests = await files.content_of(db, [r.file_id for r in mounted])
    return [(mount_paths.relative(r.mount_path), digests[r.file_id]) for r in mounted if r.file_id in digests]


def sealed_tokens(row: Session) -> dict[str, str]:
    """The sealed token of each repository resource that has one."""
    return dict(row.resource_tokens or {})
