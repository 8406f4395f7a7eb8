from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType
from app.shared.vault_auth import PublicAuth


class Vault(Base):
    """A named collection of credentials that sessions reference by ``vault_ids``."""

    __tablename__ = "vaults"
    __table_args__ = (Index("ix_vaults_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class VaultCredential(Base):
    """One credential. ``auth`` is the public half (what responses show); the secret fields are
    only in ``secret``, a Fernet token (see app/vaults/secrets.py), emptied when archived.

    ``match_key`` is what must be unique among a vault's active credentials: ``url:`` plus the
    normalised MCP server URL, or ``env:`` plus the variable name.
    """

    __tablename__ = "vault_credentials"
    __table_args__ = (Index("ix_vault_credentials_vault_id_created_at", "vault_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vault_id: Mapped[str] = mapped_column(ForeignKey("vaults.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    match_key: Mapped[str] = mapped_column(Text)
    auth: Mapped[PublicAuth] = mapped_column(JsonType)
    secret: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]
