"""Record and replay under the `anthropic` SDK, as its HTTP transport.

The SDK builds the request and parses the answer exactly as with the real API; only the bytes in
between come from a cassette (``replay``), from the upstream while being copied to a cassette
(``record``), or from whichever has them (``record_missing``: the cassette first).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2

from app.agent_loop.cassettes import matching
from app.agent_loop.cassettes.cassette import Cassette, CassetteError, Interaction, SseFrame
from app.config import CassetteMode, Settings

log = logging.getLogger(__name__)
SECRET_HEADERS = ("x-api-key", "authorization", "proxy-authorization")
# Answers about the recording set-up (a missing or wrong key), not about the request.
NOT_RECORDED = (401, 403, 407)


class CassetteLibrary:
    """The cassettes of one directory and the one in use (switched per test by the plugin)."""

    def __init__(self, directory: Path, name: str, mode: CassetteMode) -> None:
        self.directory = directory
        self.mode = mode
        self.name = name
        self._cassette: Cassette | None = None
        self._secrets: set[str] = set()
        self._recorded_names: set[str] = set()
        self._writing = asyncio.Lock()

    async def use(self, name: str) -> Cassette:
        """Switch to `name`, read afresh (every recorded answer is unserved again). In `record`
        mode a cassette starts empty the first time this process uses it (the file is replaced by
        the first answer recorded); used again (tests sharing a cassette), it keeps what was added."""
        fresh = self.mode == "record" and name not in self._recorded_names
        cassette = await asyncio.to_thread(Cassette.open, self.directory, name, fresh=fresh)
        self._recorded_names.add(name)
        self.name, self._cassette = name, cassette
        return cassette

    async def active(self) -> Cassette:
        if self._cassette is None or self._cassette.name != self.name:
            return await self.use(self.name)
        return self._cassette

    async def save(self, cassette: Cassette, secrets: list[str]) -> None:
        self._secrets.update(secrets)
        async with self._writing:
            text = cassette.render(sorted(self._secrets))
            await asyncio.to_thread(cassette.write, text)


def cassette_library(settings: Settings) -> CassetteLibrary | None:
    """The library of a server whose model backend is a cassette mode (None for the others)."""
    mode = settings.cassette_mode()
    return CassetteLibrary(settings.cassette_dir, settings.cassette, mode) if mode else None


class CassetteTransport(httpx2.AsyncBaseTransport):
    def __init__(self, library: CassetteLibrary, upstream: httpx2.AsyncBaseTransport | None = None) -> None:
        self.library = library
        self.upstream = upstream
        self._replayed = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        endpoint = request.url.path
        try:
            body = json.loads(await request.aread())
            cassette = await self.library.active()
        except (ValueError, CassetteError) as exc:
            return _error(request, f"cassette {self.library.name!r}: {exc}")
        normalised = matching.normalise(body) if isinstance(body, dict) else {"body": body}
        if self.library.mode != "record":
            recorded = cassette.take(endpoint, normalised)
            if recorded is not None:
                return self._replay(request, recorded)
            if self.library.mode == "replay" or self.upstream is None:
                return _error(request, cassette.explain_miss(endpoint, normalised))
        return await self._record(request, cassette, Interaction(endpoint, normalised, status=0))

    async def aclose(self) -> None:
        if self.upstream is not None:
            await self.upstream.aclose()

    # -- replay ---------------------------------------------------------------------------------
    def _replay(self, request: httpx2.Request, recorded: Interaction) -> httpx2.Response:
        self._replayed += 1
        headers = {"request-id": f"req_replay_{self._replayed:06d}"}
        if recorded.events is not None:
            headers["content-type"] = "text/event-stream"
            frames = [render_frame(frame) for frame in recorded.events]
            return httpx2.Response(recorded.status, headers=headers, stream=_Frames(frames), request=request)
        return httpx2.Response(recorded.status, headers=headers, json=recorded.body, request=request)

    # -- record ---------------------------------------------------------------------------------
    async def _record(
        self, request: httpx2.Request, cassette: Cassette, interaction: Interaction
    ) -> httpx2.Response:
        assert self.upstream is not None  # record modes always have one (see create_model_client)
        secrets = _secrets(request)
        request.headers["accept-encoding"] = "identity"  # recorded bytes are the text itself
        response = await self.upstream.handle_async_request(request)
        interaction.status = response.status_code

        async def done(content: bytes) -> None:
            if response.status_code in NOT_RECORDED:
                return
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                interaction.events = parse_frames(content)
                if not _complete(interaction.events):
                    return  # abandoned (an interrupt) or cut: not an answer to replay
            else:
                interaction.body = _json_or_text(content)
            cassette.add(interaction)
            try:
                await self.library.save(cassette, secrets)
            except OSError:
                log.exception("could not write cassette %s", cassette.path)

        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, done),
            request=request,
            extensions=response.extensions,
        )


class _Frames(httpx2.AsyncByteStream):
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self.frames:
            yield frame


class _Tee(httpx2.AsyncByteStream):
    """Passes the upstream's bytes through as they come and hands the whole answer to `done` once
    the stream ends or the client closes it (the SDK stops reading at `message_stop`)."""

    def __init__(self, upstream: httpx2.AsyncByteStream, done: Callable[[bytes], Awaitable[None]]) -> None:
        self.upstream = upstream
        self.done = done
        self.chunks: list[bytes] = []
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.upstream:
            self.chunks.append(chunk)
            yield chunk
        await self._finish()

    async def aclose(self) -> None:
        try:
            await self._finish()
        finally:
            await self.upstream.aclose()

    async def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            await self.done(b"".join(self.chunks))


def parse_frames(content: bytes) -> list[SseFrame]:
    """Server-sent events as ``{"event": name, "data": parsed JSON}``, in order."""
    frames: list[SseFrame] = []
    text = content.decode("utf-8").replace("\r\n", "\n")
    for block in text.split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if event is None and not data:
            continue
        frames.append({"event": event, "data": _json_or_text("\n".join(data).encode())})
    return frames


def _complete(frames: list[SseFrame]) -> bool:
    return bool(frames) and frames[-1]["event"] in ("message_stop", "error")


def render_frame(frame: SseFrame) -> bytes:
    data = frame["data"]
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {frame['event']}\n" if frame["event"] else ""
    return f"{head}data: {text}\n\n".encode()


def _json_or_text(content: bytes) -> Any:
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _secrets(request: httpx2.Request) -> list[str]:
    values = []
    for name in SECRET_HEADERS:
        value = request.headers.get(name)
        if value:
            values.append(value)
            values.append(value.split(" ", 1)[-1])  # "Bearer <token>" -> the token alone
    return values


def _error(request: httpx2.Request, message: str) -> httpx2.Response:
    """A miss or an unusable cassette: a 400 the SDK turns into a non-retryable model error."""
    log.warning("%s", message)
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return httpx2.Response(400, json=body, headers={"request-id": "req_cassette_miss"}, request=request)
