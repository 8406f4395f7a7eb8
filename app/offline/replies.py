"""The fixed texts and blocks the offline model answers with (all deterministic)."""

from __future__ import annotations

import hashlib
import re

from app.offline.messages import MessageParam
from app.offline.tokens import as_blocks
from app.shared.content import ContentBlock

SNIPPET_CHARS = 100
_SUMMARY_REQUEST = re.compile(r"\bsummari[sz]e\b.*\bconversation\b", re.IGNORECASE | re.DOTALL)
_LONG_PATTERN = "offline filler text "


def text_block(text: str) -> ContentBlock:
    return {"type": "text", "text": text}


def default_reply(user_text: str) -> str:
    return f'Offline model reply to: "{user_text}"'


def thinking_block(user_text: str) -> ContentBlock:
    thinking = f'Offline thinking about: "{user_text}"'
    # Real signatures are opaque; a digest keeps it deterministic and non-empty.
    signature = "offline-" + hashlib.sha256(thinking.encode()).hexdigest()
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def long_text(chars: int) -> str:
    repeats = chars // len(_LONG_PATTERN) + 1
    return (_LONG_PATTERN * repeats)[:chars]


def unknown_tools_text(unknown: list[str], known: list[str]) -> str:
    available = ", ".join(known) if known else "none"
    names = ", ".join(f'"{name}"' for name in unknown)
    return f"Offline model cannot call unknown tool(s) {names} (tools in this request: {available})."


def problems_text(problems: list[str]) -> str:
    return "Offline model could not read these directives:\n" + "\n".join(f"- {p}" for p in problems)


def tool_results_text(blocks: list[ContentBlock]) -> str:
    lines = [_tool_result_line(block) for block in blocks if block.get("type") == "tool_result"]
    return "Tool results:\n" + "\n".join(lines)


def is_summary_request(user_text: str) -> bool:
    return bool(_SUMMARY_REQUEST.search(user_text))


def summary_text(messages: list[MessageParam]) -> str:
    """Summarises every message, leaving out the summarize instruction itself wherever it sits."""
    snippets = [(message.get("role"), message_snippet(message)) for message in messages]
    parts = [f"{role}: {snippet}" for role, snippet in snippets if snippet]
    return f"Summary of {len(parts)} messages: " + " | ".join(parts)


def message_snippet(message: MessageParam) -> str:
    pieces = [_block_snippet(block) for block in as_blocks(message.get("content"))]
    # One line per snippet: a quoted `/tool ...` line must not become a directive again.
    text = " ".join(" ".join(piece.split()) for piece in pieces if piece)
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def _block_snippet(block: ContentBlock) -> str:
    kind = block.get("type")
    if kind == "text":
        text = str(block.get("text", "")).strip()
        return "" if is_summary_request(text) else text
    if kind == "tool_use":
        return f"[tool_use {block.get('name')}]"
    if kind == "tool_result":
        return f"[tool_result {result_text(block)}]"
    return f"[{kind}]" if kind not in ("thinking", "redacted_thinking") else ""


def result_text(block: ContentBlock) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    parts = [
        str(item.get("text", "")) if item.get("type") == "text" else f"[{item.get('type')}]"
        for item in as_blocks(content)
    ]
    return "\n".join(parts)


def _tool_result_line(block: ContentBlock) -> str:
    prefix = "error: " if block.get("is_error") else ""
    return prefix + result_text(block)
