"""Large MCP outputs spill into the session's sandbox as the built-in tools' do: the model gets
the first 100,000 characters and the path of a file holding the whole text."""

from __future__ import annotations

import uuid

from app.sandbox.interface import SandboxBackend, SandboxError, SandboxSpec, ToolRequest
from app.shared.content import ContentBlock

LIMIT = 100_000


async def spill_large_text(
    sandbox: SandboxBackend, session_id: str, spec: SandboxSpec, blocks: list[ContentBlock]
) -> list[ContentBlock]:
    out = []
    for block in blocks:
        text = block.get("text") if block.get("type") == "text" else None
        if isinstance(text, str) and len(text) > LIMIT:
            block = {"type": "text", "text": await _spill(sandbox, session_id, spec, text)}
        out.append(block)
    return out


async def _spill(sandbox: SandboxBackend, session_id: str, spec: SandboxSpec, text: str) -> str:
    path = f"{sandbox.workspace(session_id)}/.mcp-output/result-{uuid.uuid4().hex[:12]}.txt"
    where = f"full output in {path}"
    try:
        await sandbox.ensure(session_id, spec)
        written = await sandbox.execute(
            session_id, ToolRequest(name="write", input={"file_path": path, "content": text})
        )
        if written.is_error:
            where = "the full output could not be saved"
    except SandboxError:
        where = "the full output could not be saved (the sandbox is unavailable)"
    return f"{text[:LIMIT]}\n[output truncated: showing the first {LIMIT} of {len(text)} characters; {where}]"
