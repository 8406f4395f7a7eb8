"""MCP tool results as the content blocks of ``agent.mcp_tool_result`` (and of the model's
``tool_result``): text, images and PDF documents pass through; what a model cannot take is
described in text instead of dropped silently."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mcp import types as mt

from app.shared.content import ContentBlock
from app.shared.text import storable_blocks

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _text(value: str) -> ContentBlock:
    return {"type": "text", "text": value}


def _size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)


def _binary(mime: str, data: str, label: str) -> ContentBlock:
    if mime in IMAGE_TYPES:
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if mime == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}
    return _text(f"[{label}: {mime or 'unknown type'}, {_size(data)} bytes, not shown]")


def _block(item: Any) -> ContentBlock:
    if isinstance(item, mt.TextContent):
        return _text(item.text)
    if isinstance(item, mt.ImageContent):
        return _binary(item.mime_type, item.data, "image")
    if isinstance(item, mt.AudioContent):
        return _binary(item.mime_type, item.data, "audio")
    if isinstance(item, mt.EmbeddedResource):
        resource = item.resource
        if isinstance(resource, mt.TextResourceContents):
            return _text(f"Resource {resource.uri}:\n{resource.text}")
        return _binary(resource.mime_type or "", resource.blob, f"resource {resource.uri}")
    if isinstance(item, mt.ResourceLink):
        return _text(f"Resource link: {item.name} <{item.uri}>")
    return _text(f"[{getattr(item, 'type', 'unknown')} content, not shown]")


def to_blocks(result: mt.CallToolResult) -> list[ContentBlock]:
    blocks = [_block(item) for item in result.content]
    if not blocks and result.structured_content is not None:
        blocks = [_text(json.dumps(result.structured_content, ensure_ascii=False))]
    return storable_blocks(blocks) or [_text("(no output)")]
