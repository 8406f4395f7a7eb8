"""Switching the cassette the embedded worker's model backend uses (the pytest plugin does, per test)."""

from __future__ import annotations

from app.agent_loop.cassettes.cassette import Cassette, CassetteError
from app.agent_loop.cassettes.schemas import CassetteState
from app.agent_loop.cassettes.transport import CassetteLibrary
from app.errors import InvalidRequest


def _state(library: CassetteLibrary, cassette: Cassette) -> CassetteState:
    return CassetteState(
        name=cassette.name, mode=library.mode, path=cassette.path, interactions=len(cassette.interactions)
    )


def _library(library: CassetteLibrary | None) -> CassetteLibrary:
    if library is None:
        raise InvalidRequest(
            "this server's model backend does not use cassettes: start it with "
            "MAS_MODEL_BACKEND=record, replay or record_missing"
        )
    return library


async def use(library: CassetteLibrary | None, name: str) -> CassetteState:
    library = _library(library)
    try:
        return _state(library, await library.use(name))
    except CassetteError as exc:
        raise InvalidRequest(str(exc)) from exc


async def current(library: CassetteLibrary | None) -> CassetteState:
    library = _library(library)
    try:
        return _state(library, await library.active())
    except CassetteError as exc:
        raise InvalidRequest(str(exc)) from exc
