"""/v1/mas/cassette: which cassette the record/replay model backend uses (a mas extension)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.agent_loop.cassettes import service
from app.agent_loop.cassettes.schemas import CassetteSelect, CassetteState
from app.agent_loop.cassettes.transport import CassetteLibrary

router = APIRouter(prefix="/mas/cassette", tags=["testing"])


async def get_library(request: Request) -> CassetteLibrary | None:
    library: CassetteLibrary | None = getattr(request.app.state, "cassettes", None)
    return library


Library = Annotated[CassetteLibrary | None, Depends(get_library)]


@router.get("", response_model=CassetteState)
async def get_cassette(library: Library) -> CassetteState:
    """The cassette model requests are answered from (and recorded to)."""
    return await service.current(library)


@router.put("", response_model=CassetteState)
async def use_cassette(body: CassetteSelect, library: Library) -> CassetteState:
    """Switch the embedded worker's model backend to another cassette, read afresh."""
    return await service.use(library, body.name)
