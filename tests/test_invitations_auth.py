"""Guest tokens of invitation links (presence_server/auth.py): signed by the platform
key only, issuer and algorithm pinned, confined to their project, carrying the
invitation. Pure verification, no server."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from presence_server.auth import TokenVerifier, mint_guest_token
from presence_server.config_invitations import INVITATION_ISSUER
from rooms.errors import DomainError
from tests.conftest import make_settings

SETTINGS = make_settings()
PLATFORM = "p" * 40
TOWN = SETTINGS.auth.municipalities["altbach"].secret.get_secret_value()  # type: ignore[union-attr]
NOW = time.time()


def guest_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": INVITATION_ISSUER, "sub": "gast-inv1-1", "name": "Dr. Gast", "municipality": "altbach",
        "roles": ["guest"], "project": "p1", "inv": "inv1", "iat": int(NOW), "exp": int(NOW) + 600,
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def verifier(secret: str | None = PLATFORM) -> TokenVerifier:
    return TokenVerifier(SETTINGS.auth, invitation_secret=secret)


def refused(token: str, secret: str | None = PLATFORM) -> str:
    with pytest.raises(DomainError) as err:
        verifier(secret).verify_local(token)
    return str(err.value.detail)


def test_a_minted_guest_token_is_a_guest_confined_to_its_project() -> None:
    token = mint_guest_token(PLATFORM, municipality="altbach", user_id="gast-inv1-1", name="Dr. Gast",
                             project="p1", invitation_id="inv1", expires_at=NOW + 600, now=NOW)  # fmt: skip
    identity = verifier().verify_local(token)
    actor = identity.actor
    assert (actor.person_id, actor.project, actor.is_guest, actor.is_admin) == ("altbach/gast-inv1-1", "p1", True, False)
    assert identity.invitation_id == "inv1"


def test_a_towns_key_cannot_sign_a_guest_token() -> None:
    assert refused(jwt.encode(guest_claims(), TOWN, algorithm="HS256")) == "bad signature"


def test_the_platform_key_signs_nothing_but_guest_tokens() -> None:
    # Without the invitation issuer a token is a town's, checked against the town's key.
    assert refused(jwt.encode(guest_claims(iss=None), PLATFORM, algorithm="HS256")) == "bad signature"
    # With it, the roles must be exactly guest, and project and invitation present.
    for changes in ({"roles": ["staff"]}, {"roles": ["guest", "admin"]}, {"project": None}, {"inv": None}):
        assert refused(jwt.encode(guest_claims(**changes), PLATFORM, algorithm="HS256")).startswith(
            ("invalid claim", "missing claim")
        ), changes


def test_a_town_token_never_confines_or_carries_an_invitation() -> None:
    claims = guest_claims(iss=None)
    identity = verifier().verify_local(jwt.encode(claims, TOWN, algorithm="HS256"))
    assert identity.actor.project is None and identity.invitation_id is None


def test_the_algorithm_is_pinned_and_a_server_without_the_key_refuses_guest_tokens() -> None:
    none_alg = jwt.encode(guest_claims(), None, algorithm="none")
    assert refused(none_alg) in ("algorithm not allowed", "invalid token")
    token = jwt.encode(guest_claims(), PLATFORM, algorithm="HS256")
    assert refused(token, secret=None) == "invitations are not configured"
    assert refused(jwt.encode(guest_claims(), "q" * 40, algorithm="HS256")) == "bad signature"
