"""The dispatcher's side of the work queue: the calls the SDK's poller makes, over plain HTTP with
an environment key (`Authorization: Bearer`), so a dispatcher runs anywhere the API is reachable."""

from __future__ import annotations

from typing import Any

import httpx

from app.work.schemas import Work

BETA = "managed-agents-2026-04-01"
POLL_BLOCK_MS = 999  # the longest long poll the API allows


class QueueError(Exception):
    """A queue call failed; ``fatal`` when retrying cannot help (a bad key or environment)."""

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal


class QueueClient:
    def __init__(self, api_url: str, environment_id: str, key: str, worker_id: str) -> None:
        self.environment_id = environment_id
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers={
                "authorization": f"Bearer {key}",
                "anthropic-version": "2023-06-01",
                "anthropic-beta": BETA,
                "anthropic-worker-id": worker_id,
            },
            timeout=httpx.Timeout(30.0),
        )
        self._base = f"/v1/environments/{environment_id}/work"

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, self._base + path, **kwargs)
        except httpx.HTTPError as exc:
            raise QueueError(f"{method} {path or '/'}: {exc!r}") from exc
        if response.status_code >= 400:
            raise QueueError(
                f"{method} {self._base}{path}: {response.status_code} {_message(response)}",
                status=response.status_code,
                fatal=response.status_code in (401, 403) or (response.status_code == 404 and path == "/poll"),
            )
        return response

    async def poll(self, block_ms: int = POLL_BLOCK_MS) -> Work | None:
        """Claim the oldest queued item, waiting up to ``block_ms``; None when there is none."""
        response = await self._call("GET", "/poll", params={"block_ms": block_ms})
        body = response.json()
        return None if body is None else Work.model_validate(body)

    async def ack(self, work_id: str) -> Work:
        return Work.model_validate((await self._call("POST", f"/{work_id}/ack")).json())

    async def get(self, work_id: str) -> Work | None:
        """The item now, or None when it is gone (its environment or session was deleted)."""
        try:
            return Work.model_validate((await self._call("GET", f"/{work_id}")).json())
        except QueueError as exc:
            if exc.status == 404:
                return None
            raise

    async def stop(self, work_id: str) -> None:
        """Force-stop the item; one that is already stopped is left as it is."""
        try:
            await self._call("POST", f"/{work_id}/stop", json={"force": True})
        except QueueError as exc:
            if exc.status != 409:
                raise

    async def annotate(self, work_id: str, metadata: dict[str, str | None]) -> None:
        """Record what the dispatcher knows about the item in its metadata (visible to the API)."""
        await self._call("POST", f"/{work_id}", json={"metadata": metadata})

    async def close(self) -> None:
        await self._http.aclose()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
