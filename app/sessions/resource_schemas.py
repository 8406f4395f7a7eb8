"""Session resources: the params (at create, and added later) and the resource objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.db.session_json import ResourceJson


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileResourceParams(_Params):
    type: Literal["file"]
    file_id: str = Field(min_length=1)
    mount_path: str | None = None


class BranchCheckout(_Params):
    type: Literal["branch"]
    name: str = Field(min_length=1, max_length=255)


class CommitCheckout(_Params):
    type: Literal["commit"]
    sha: str = Field(min_length=4, max_length=64)


Checkout = Annotated[BranchCheckout | CommitCheckout, Field(discriminator="type")]


class GitHubRepositoryParams(_Params):
    type: Literal["github_repository"]
    url: str = Field(min_length=1)
    authorization_token: str | None = None
    checkout: Checkout | None = None
    mount_path: str | None = None


MAX_INSTRUCTIONS = 4096


class MemoryStoreParams(_Params):
    type: Literal["memory_store"]
    memory_store_id: str = Field(min_length=1)
    access: Literal["read_write", "read_only"] | None = None
    instructions: str | None = Field(None, max_length=MAX_INSTRUCTIONS)


ResourceParams = Annotated[
    FileResourceParams | GitHubRepositoryParams | MemoryStoreParams, Field(discriminator="type")
]


class ResourceUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    authorization_token: str = Field(min_length=1)


class FileResource(BaseModel):
    id: str
    type: Literal["file"] = "file"
    file_id: str
    mount_path: str
    created_at: datetime
    updated_at: datetime


class GitHubRepositoryResource(BaseModel):
    id: str
    type: Literal["github_repository"] = "github_repository"
    url: str
    mount_path: str
    checkout: BranchCheckout | CommitCheckout | None = None
    created_at: datetime
    updated_at: datetime


class MemoryStoreResource(BaseModel):
    """A mounted memory store: no id and no timestamps; name and description as at attach time."""

    type: Literal["memory_store"] = "memory_store"
    memory_store_id: str
    access: Literal["read_write", "read_only"]
    description: str
    instructions: str | None = None
    mount_path: str
    name: str

    @property
    def slug(self) -> str:
        return self.mount_path.rsplit("/", 1)[-1]


SessionResource = Annotated[
    FileResource | GitHubRepositoryResource | MemoryStoreResource, Field(discriminator="type")
]


# A resource as the session row stores it (and `SessionOut.resources` shows it).
StoredResource = Annotated[ResourceJson, Field(discriminator="type")]
_STORED: TypeAdapter[ResourceJson] = TypeAdapter(StoredResource)


def stored(resource: FileResource | GitHubRepositoryResource | MemoryStoreResource) -> ResourceJson:
    """The resource's JSON, as the row keeps it."""
    return _STORED.validate_python(resource.model_dump(mode="json"))


class ResourcePage(BaseModel):
    data: list[SessionResource]
    next_page: str | None


class ResourceDeleted(BaseModel):
    id: str
    type: Literal["session_resource_deleted"] = "session_resource_deleted"
