"""Turn pydantic validation errors raised inside services into the API's 400s.

The HTTP layer formats request-body errors itself (``app/api/errors.py``); services that parse
nested JSON on their own (a session's ``agent`` parameter, say) use ``parse`` so that their
messages name the field the same way: ``agent.tools[0].configs[1].name: ...``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, Discriminator, ValidationError

from app.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)

# The largest value an INTEGER column (int32 on PostgreSQL) holds, and a BIGINT one.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def join_path(prefix: str, loc: tuple[Any, ...]) -> str:
    """``("tools", 0, "name")`` under ``agent`` -> ``agent.tools[0].name``.

    Union tags that pydantic puts in ``loc`` contain a ``-`` (ours are named so on purpose)
    and are dropped, as the HTTP layer does.
    """
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "-" not in part:
            out += f".{part}" if out else part
    return out


def type_discriminator(tags: dict[str, str]) -> Discriminator:
    """A discriminator on ``type`` whose tags (``{"custom": "custom-tool"}``) contain a ``-``, so
    error locations read ``tools[0].name`` rather than ``tools[0].custom.name``."""

    def tag_of(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return tags.get(kind) if isinstance(kind, str) else None

    expected = ", ".join(f"'{kind}'" for kind in tags)
    return Discriminator(
        tag_of, custom_error_type="invalid_type", custom_error_message=f"type must be one of {expected}"
    )


def parse(model: type[M], data: Any, prefix: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(_message(exc, prefix)) from None


def _message(exc: ValidationError, prefix: str) -> str:
    messages = []
    for err in exc.errors()[:5]:
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        messages.append(f"{join_path(prefix, tuple(err.get('loc', ()))) or 'request'}: {msg}")
    return "; ".join(messages)
