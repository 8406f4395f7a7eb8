"""content_blobs: every byte on the blob backend (skill files leave the database)

Revision ID: b7d4e19a2c53
Revises: c3e9a7d5b2f1
Create Date: 2026-11-30 03:50:00

Skill files were the one kind of content kept in ``content_blobs.data``; they move to the blob
backend (``<storage_dir>/blobs/ab/cd/<sha256>``, where Files API content already is) and the
column goes. The downgrade brings back the column and the bytes of the rows skill files use
(the code of the previous revision reads skill files from the row); other content stays on disk,
where that code expected it too.

The storage directory is ``config.attributes["storage_dir"]`` (``mas`` passes its setting) or
else ``MAS_STORAGE_DIR``'s.
"""

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision: str = "b7d4e19a2c53"
down_revision: str | None = "c3e9a7d5b2f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 200


def _storage_dir() -> Path:
    configured = context.config.attributes.get("storage_dir")
    if configured is None:
        from app.config import get_settings

        configured = get_settings().storage_dir
    return Path(configured).resolve()


def _blob_path(root: Path, sha256: str) -> Path:
    return root / "blobs" / sha256[:2] / sha256[2:4] / sha256


def _write(root: Path, sha256: str, data: bytes) -> None:
    """As the backend places content: written and synced under a temporary name, then renamed."""
    final = _blob_path(root, sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root / "tmp", prefix="migrate-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(name, 0o444)
    os.replace(name, final)


BLOBS = sa.table("content_blobs", sa.column("sha256", sa.String()), sa.column("data", sa.LargeBinary()))


def _pages(query: sa.Select[tuple[str]]) -> Iterator[list[str]]:
    """Digests in primary-key batches."""
    bind, last, blobs = op.get_bind(), "", BLOBS
    while True:
        page = query.where(blobs.c.sha256 > last).order_by(blobs.c.sha256).limit(BATCH)
        digests = list(bind.execute(page).scalars())
        if not digests:
            return
        yield digests
        last = digests[-1]


def upgrade() -> None:
    blobs, bind = BLOBS, op.get_bind()
    for digests in _pages(sa.select(blobs.c.sha256).where(blobs.c.data.is_not(None))):
        rows = bind.execute(sa.select(blobs.c.sha256, blobs.c.data).where(blobs.c.sha256.in_(digests)))
        root = _storage_dir()  # only asked for when there is content to move
        for sha256, data in rows:
            _write(root, sha256, bytes(data))
    op.drop_column("content_blobs", "data")


def downgrade() -> None:
    op.add_column("content_blobs", sa.Column("data", sa.LargeBinary(), nullable=True))
    blobs, bind = BLOBS, op.get_bind()
    skill_files = sa.table("skill_files", sa.column("sha256", sa.String()))
    used = sa.select(blobs.c.sha256).where(blobs.c.sha256.in_(sa.select(skill_files.c.sha256)))
    for digests in _pages(used):
        root = _storage_dir()
        for sha256 in digests:
            path = _blob_path(root, sha256)
            if path.is_file():  # gone: the previous code reports it as missing content, as before
                bind.execute(blobs.update().where(blobs.c.sha256 == sha256).values(data=path.read_bytes()))
