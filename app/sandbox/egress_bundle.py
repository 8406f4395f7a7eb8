"""`cryptography` for the egress proxy, bundled from this very Python installation.

The proxy mints leaf certificates on demand (for hosts not known ahead: a credential and an
environment both unrestricted, or a name deeper than a wildcard certificate covers) with its
session's intermediate CA. Its image has only Debian's python3, so ``cryptography`` and its
dependency closure are copied once from the installation mas runs on into
``<state dir>/egress-site/<digest>/site`` and mounted read-only into proxies (as the dispatch
SDK bundle is, see sdk_bundle.py). The compiled parts need the proxy's CPython to be of this
process's minor version (3.11, as in the proxy image); if they do not import there, the proxy
logs it and substitutes on the names of its pre-minted certificate only.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from app.config import Settings
from app.sandbox import sdk_bundle


def ensure(settings: Settings) -> Path:
    """The ``site`` directory to mount (made once per version of the closure; blocking)."""
    dists = sdk_bundle.closure("cryptography")
    value = hashlib.sha256(f"{sys.version_info[:2]}\n".encode())
    for dist in dists:
        value.update(f"{dist.metadata['Name']}=={dist.version}\n".encode())
    root = settings.sandbox_state_dir.resolve() / "egress-site"
    target = root / value.hexdigest()[:24]
    if target.is_dir():
        return target / "site"

    def fill(partial: Path) -> None:
        for dist in dists:
            sdk_bundle.copy_distribution(dist, partial / "site")

    sdk_bundle.publish(target, fill)  # readable by the proxy's user
    return target / "site"
