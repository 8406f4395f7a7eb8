"""`credential_host_unreachable_error`: an `environment_variable` credential names hosts the
session's environment does not let the sandbox reach (limited networking), so its secret can
never be substituted there. Reported once per turn, at its first tool step that runs in the
sandbox (the request itself gets the egress proxy's 403); the turn goes on."""

from __future__ import annotations

from collections.abc import Sequence

from app.config import Settings
from app.events.types import EventRecord
from app.sandbox import egress
from app.sandbox.build_steps import Mirrors
from app.shared.environment_config import NetworkingConfig
from app.vaults.resolve import EnvCredential


def unreachable_errors(
    settings: Settings,
    credentials: Sequence[EnvCredential],
    networking: NetworkingConfig,
    mcp_hosts: list[str],
) -> list[EventRecord]:
    if not egress.is_limited(networking):
        return []
    allowed = egress.allowed_hosts(networking, mcp_hosts, Mirrors.from_settings(settings).urls())
    errors = []
    for credential in credentials:
        blocked = [h for h in credential.hosts or () if not egress.substitution_names(allowed, [h])]
        if blocked:
            errors.append(_event(credential, blocked))
    return errors


def _event(credential: EnvCredential, blocked: list[str]) -> EventRecord:
    hosts = ", ".join(blocked)
    return {
        "type": "session.error",
        "error": {
            "type": "credential_host_unreachable_error",
            "message": (
                f"Credential {credential.credential_id} ({credential.secret_name}) of vault "
                f"{credential.vault_id} allows {hosts}, which the environment's networking policy "
                "does not: its secret is never sent there"
            ),
            "credential_id": credential.credential_id,
            "vault_id": credential.vault_id,
            "retry_status": {"type": "exhausted"},
        },
    }
