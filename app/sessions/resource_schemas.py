"""Session resources: the params (at create, and added later) and the resource objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class MemoryStoreParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["memory_store"]
    memory_store_id: str


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


SessionResource = Annotated[FileResource | GitHubRepositoryResource, Field(discriminator="type")]


class ResourcePage(BaseModel):
    data: list[SessionResource]
    next_page: str | None


class ResourceDeleted(BaseModel):
    id: str
    type: Literal["session_resource_deleted"] = "session_resource_deleted"
