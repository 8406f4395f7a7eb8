"""``anthropic-beta`` rules of resources that have their own beta.

Memory stores take ``agent-memory-2026-07-22`` (what the SDK sends) or
``managed-agents-2026-04-01``, but not both at once: that is a 400, as on the hosted API. A
request that sends neither is accepted, like every other resource here.
"""

from __future__ import annotations

from fastapi import Request

from app.errors import InvalidRequest

MEMORY_BETA = "agent-memory-2026-07-22"
MANAGED_AGENTS_BETA = "managed-agents-2026-04-01"


def requested_betas(request: Request) -> set[str]:
    return {
        beta.strip()
        for header in request.headers.getlist("anthropic-beta")
        for beta in header.split(",")
        if beta.strip()
    }


async def require_memory_beta(request: Request) -> None:
    betas = requested_betas(request)
    if MEMORY_BETA in betas and MANAGED_AGENTS_BETA in betas:
        raise InvalidRequest(
            f"anthropic-beta: send either {MEMORY_BETA} or {MANAGED_AGENTS_BETA} for memory stores, not both"
        )
