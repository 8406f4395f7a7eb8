"""web_search outside the real API: a configured search endpoint, called from the host."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import httpx

from app.config import Settings
from app.sandbox.interface import ToolRequest, ToolResult

_LIMIT = 100_000


async def web_search(settings: Settings, request: ToolRequest, limit_s: float) -> ToolResult:
    """GET the endpoint with the query (`{query}` in the URL, else `?q=`); the body is the result."""
    query = request.input.get("query")
    if not isinstance(query, str) or not query.strip():
        return ToolResult.error("Missing required parameter: query")
    url = settings.web_search_url
    if not url:
        return ToolResult.error(
            "web_search is not available on this server: no search endpoint is "
            "configured (MAS_WEB_SEARCH_URL)."
        )
    params = None if "{query}" in url else {"q": query}
    target = url.replace("{query}", quote_plus(query))
    try:
        async with httpx.AsyncClient(timeout=limit_s, follow_redirects=True) as client:
            response = await client.get(target, params=params)
    except httpx.HTTPError as exc:
        return ToolResult.error(f"web_search failed: {exc}")
    if response.status_code >= 400:
        return ToolResult.error(f"web_search failed: HTTP {response.status_code}")
    return ToolResult([{"type": "text", "text": _body_text(response)[:_LIMIT] or "No results"}])


def _body_text(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json(), ensure_ascii=False)
    except ValueError:
        return response.text
