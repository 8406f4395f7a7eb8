"""Where built-in tools run: one sandbox per session behind the SandboxBackend protocol.

The agent loop uses ``create_backend(settings)`` and the types below; nothing else.
"""

from app.sandbox.factory import create_backend
from app.sandbox.interface import (
    TOOL_NAMES,
    ImageBuildError,
    Progress,
    SandboxBackend,
    SandboxError,
    SandboxNotFound,
    SandboxSpec,
    ToolRequest,
    ToolResult,
)

__all__ = [
    "TOOL_NAMES",
    "ImageBuildError",
    "Progress",
    "SandboxBackend",
    "SandboxError",
    "SandboxNotFound",
    "SandboxSpec",
    "ToolRequest",
    "ToolResult",
    "create_backend",
]
