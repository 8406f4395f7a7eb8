"""Repository tokens at rest: Fernet with a key kept next to the stored files (generated on first
use, mode 0600). Every process of one deployment shares ``MAS_STORAGE_DIR``, so they share it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.config import Settings


def token_box(settings: Settings) -> FernetBox:
    return FernetBox.from_file(settings.storage_dir / "keys" / "repository-tokens.key")


class TokenUnreadable(Exception):
    """A sealed token does not open (another key, or it was copied onto another resource)."""


class FernetBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_file(cls, path: Path) -> FernetBox:
        return cls(_load_or_create(path))

    def seal(self, owner: str, secret: Mapping[str, str]) -> str:
        payload = json.dumps({"owner": owner, "secret": dict(secret)}, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode()).decode()

    def open(self, owner: str, token: str) -> dict[str, str]:
        try:
            payload = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise TokenUnreadable("the key does not open this token") from None
        if payload.get("owner") != owner:
            raise TokenUnreadable("the token belongs to another resource")
        return {str(k): str(v) for k, v in payload["secret"].items()}


def _load_or_create(path: Path) -> bytes:
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(Fernet.generate_key())
    try:
        os.link(tmp, path)  # another process may have won the race: its key is the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
