"""Settings for invitation links (docs/projects.md, "Invitations"): the platform
key that signs guest tokens, how long links and guest sessions live, and how
often one address may try a code.

The ``signing_secret`` is the platform's own key, never a town's: the verifier
accepts a guest token only under it and only with the invitation issuer
(:mod:`presence_server.auth`). Every node of a cluster needs the same one.
Outside development mode it must be at least 32 bytes; without one the server
runs, but creating and redeeming invitations answer ``unavailable``.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["InvitationSettings", "INVITATION_ISSUER", "invitation_problems"]

#: The ``iss`` of every guest token this platform signs; a token with it is checked
#: only against ``invitations.signing_secret``.
INVITATION_ISSUER: Final = "urn:virtual-office:invitations"


class InvitationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: HS256 key for guest tokens; the same on every node. Unset: no invitations.
    signing_secret: SecretStr | None = None
    #: A new link's lifetime when the coordinator names none (never past the project's end).
    default_ttl_seconds: int = Field(default=7 * 86400, ge=60, le=365 * 86400)
    #: The longest a coordinator may give a link.
    max_ttl_seconds: int = Field(default=90 * 86400, ge=60, le=365 * 86400)
    #: A guest token's lifetime (never past the link's expiry): a guest staying
    #: longer opens the link again, which counts as another use.
    session_ttl_seconds: int = Field(default=12 * 3600, ge=60, le=7 * 86400)
    #: Redemptions one client address may attempt per minute (found or not).
    redeem_per_minute: int = Field(default=10, ge=1, le=10000)
    #: Open (unexpired and unrevoked) invitations one project may have at once.
    max_per_project: int = Field(default=100, ge=1, le=10000)
    #: How often each node checks its guests' invitations are still valid (the
    #: safety net behind the bus message that ends them at once).
    recheck_seconds: float = Field(default=15.0, gt=0, le=3600)
    #: Days an invitation's record (counts, no guest data) is kept after it expired.
    retention_days: int = Field(default=30, ge=0, le=3650)


def invitation_problems(settings: InvitationSettings, *, dev_mode: bool, min_bytes: int) -> list[str]:
    secret = settings.signing_secret
    if not dev_mode and secret is not None and len(secret.get_secret_value().encode()) < min_bytes:
        return [f"invitations.signing_secret: must be at least {min_bytes} bytes when dev_mode is false"]
    if settings.default_ttl_seconds > settings.max_ttl_seconds:
        return ["invitations.default_ttl_seconds: must not exceed max_ttl_seconds"]
    return []
