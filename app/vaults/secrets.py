"""Vault secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``).

Keys come from ``MAS_VAULT_KEYS`` (the first encrypts, all decrypt, so a new key put in front
rotates without re-encrypting). When it is unset, one key is generated into ``MAS_VAULT_KEY_FILE``
(mode 0600) on first use, with a warning: losing that file makes every stored secret unreadable,
and every process of one deployment (API and workers) must see the same key.

A sealed secret holds the credential id it belongs to, so a token copied onto another row
does not open there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import Settings

log = logging.getLogger("mas.vaults")


class SecretsUnreadable(Exception):
    """A stored secret does not open with the configured keys (wrong key, or tampered)."""


class SecretBox:
    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("at least one vault key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError):
            raise ValueError(
                "MAS_VAULT_KEYS: each key must be 32 url-safe base64-encoded bytes "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.vault_keys:
            return cls(settings.vault_keys)
        return cls([_load_or_create(settings.vault_key_file)])

    def seal(self, owner: str, secret: Mapping[str, str]) -> str:
        payload = json.dumps({"owner": owner, "secret": dict(secret)}, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode()).decode()

    def open(self, owner: str, token: str) -> dict[str, str]:
        if not token:
            return {}
        try:
            payload = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsUnreadable("the vault key does not open this secret") from None
        if payload.get("owner") != owner:
            raise SecretsUnreadable("the secret belongs to another credential")
        return {str(k): str(v) for k, v in payload["secret"].items()}


def _load_or_create(path: Path) -> str:
    """The key in ``path``; created atomically if missing (concurrent first starts agree)."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per caller: threads of one process share a pid, so a pid-named temporary
    # file was unlinked by one thread while another still meant to link it.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    with os.fdopen(fd, "w") as out:
        out.write(Fernet.generate_key().decode() + "\n")
    try:
        os.link(tmp, path)  # fails if another process won the race: use its key
        log.warning(
            "MAS_VAULT_KEYS is not set: generated a vault key in %s. Back it up (secrets cannot be "
            "read without it) and give every mas process the same key.",
            path,
        )
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
