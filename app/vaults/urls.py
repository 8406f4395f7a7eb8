"""MCP server URLs as credentials match them.

Scheme and host compare case-insensitively, a default port (80 for http, 443 for https) and a
trailing slash are ignored; path, query, subdomain and any other port must match exactly.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_CHARS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an MCP server or token endpoint URL, or None."""
    if len(url) > MAX_URL_CHARS:
        return f"must be at most {MAX_URL_CHARS} characters"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.fragment:
        return "must not have a #fragment"
    return None


def normalise_url(url: str) -> str:
    """The form two URLs are compared in (``url`` must pass ``url_problem``)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"
