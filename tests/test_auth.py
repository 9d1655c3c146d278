"""Token verification: HS256, RS256 (PEM and a real JWKS endpoint), and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from presence_server.auth import Identity, TokenVerifier, mint_token
from presence_server.config import AuthSettings, ConfigError, load_settings
from rooms.actors import Actor, Profile, Role
from rooms.errors import DomainError, ErrorCode

NOW = 1_800_000_000.0
SECRET_A = "altbach-test-secret-0123456789abcdef"
SECRET_B = "bergheim-test-secret-0123456789abcdef"


def clock() -> float:
    return NOW


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def auth_settings(**municipalities: dict[str, Any]) -> AuthSettings:
    base: dict[str, dict[str, Any]] = {
        "altbach": {"algorithm": "HS256", "secret": SECRET_A},
        "bergheim": {"algorithm": "HS256", "secret": SECRET_B},
    }
    base.update(municipalities)
    return load_settings(env={}, auth={"municipalities": base}).auth


@pytest.fixture
def settings() -> AuthSettings:
    return auth_settings()


@pytest.fixture
def verifier(settings: AuthSettings) -> TokenVerifier:
    return TokenVerifier(settings, clock=clock)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "u-100",
        "name": "Anna Schmidt",
        "municipality": "altbach",
        "roles": ["staff"],
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET_A, **headers: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token assembled by hand, for attacks PyJWT refuses to produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def assert_refused(code: ErrorCode, call: Callable[[], Any], reason: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as exc:
        call()
    assert exc.value.code is code
    if reason is not None:
        assert exc.value.detail is not None and reason in exc.value.detail
    return exc.value


# --- HS256 ------------------------------------------------------------------------------


async def test_valid_hs256_token_becomes_the_right_actor(verifier: TokenVerifier) -> None:
    token = hs256(
        claims(
            roles=["staff", "admin"],
            jti="t-1",
            department="Bauamt",
            job_title="Sachbearbeiterin",
            skills=["GIS", "Vergaberecht"],
            extra_claim_from_idp="ignored",
        )
    )
    identity = await verifier.verify(token)
    assert identity == Identity(
        actor=Actor(
            user_id="u-100",
            municipality_id="altbach",
            display_name="Anna Schmidt",
            roles=frozenset({Role.STAFF, Role.ADMIN}),
            profile=Profile(department="Bauamt", job_title="Sachbearbeiterin", skills=("GIS", "Vergaberecht")),
        ),
        expires_at=NOW + 3600,
        token_id="t-1",
    )
    assert verifier.verify_local(token) == identity


def test_optional_claims_default_to_an_empty_profile(verifier: TokenVerifier) -> None:
    identity = verifier.verify_local(hs256(claims(roles=["guest"], iat=None)))
    assert identity.actor.profile == Profile()
    assert identity.actor.is_guest
    assert identity.token_id is None


def test_bearer_prefix_is_accepted(verifier: TokenVerifier) -> None:
    assert verifier.verify_local("Bearer " + hs256(claims())).actor.user_id == "u-100"


def test_expired_token_raises_token_expired(settings: AuthSettings) -> None:
    token = hs256(claims(iat=int(NOW) - 7200, exp=int(NOW) - 3600))
    assert_refused(ErrorCode.TOKEN_EXPIRED, lambda: TokenVerifier(settings, clock=clock).verify_local(token))


def test_leeway_tolerates_small_clock_skew(verifier: TokenVerifier) -> None:
    token = hs256(claims(iat=int(NOW) - 3600, exp=int(NOW) - 10))  # leeway is 30 s
    assert verifier.verify_local(token).expires_at == NOW - 10
    late = TokenVerifier(auth_settings(), clock=lambda: NOW + 31)
    assert_refused(ErrorCode.TOKEN_EXPIRED, lambda: late.verify_local(hs256(claims(exp=int(NOW)))))


def test_token_not_yet_valid_is_refused(verifier: TokenVerifier) -> None:
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(hs256(claims(nbf=int(NOW) + 600))))


def test_wrong_secret_is_refused(verifier: TokenVerifier) -> None:
    token = hs256(claims(), secret="someone-elses-secret-0123456789abcdef")
    err = assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(token), "signature")
    assert SECRET_A not in str(err.to_wire())


def test_token_signed_for_one_municipality_cannot_claim_another(verifier: TokenVerifier) -> None:
    token = hs256(claims(municipality="bergheim"), secret=SECRET_A)
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(token), "signature")


def test_unknown_municipality_is_refused(verifier: TokenVerifier) -> None:
    token = hs256(claims(municipality="atlantis"))
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(token), "unknown municipality")


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(unsigned))
    forged = forge({"alg": "none", "typ": "JWT"}, claims(), lambda _: b"")
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(forged))


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
def test_hs512_token_is_refused_for_an_hs256_municipality(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), SECRET_A, algorithm="HS512")
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(token), "algorithm")


@pytest.mark.parametrize("claim", ["sub", "name", "roles", "exp", "municipality"])
def test_missing_claims_are_refused(verifier: TokenVerifier, claim: str) -> None:
    payload = claims()
    del payload[claim]
    err = assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(hs256(payload)))
    assert err.detail is not None and claim in err.detail


@pytest.mark.parametrize(
    "changes",
    [
        {"roles": ["staff", "mayor"]},
        {"roles": []},
        {"roles": "staff"},
        {"sub": ""},
        {"sub": "x" * 129},
        {"sub": 42},
        {"name": "   "},
        {"name": "N" * 81},
        {"exp": "1800003600"},
        {"skills": ["s"] * 21},
        {"skills": ["x" * 61]},
        {"department": 7},
    ],
    ids=lambda c: next(iter(c)) + "=" + repr(next(iter(c.values())))[:20],
)
def test_invalid_claims_are_refused(verifier: TokenVerifier, changes: dict[str, Any]) -> None:
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(hs256(claims(**changes))), "claim")


def test_lifetime_beyond_the_maximum_is_refused(verifier: TokenVerifier) -> None:
    week = 7 * 86400
    assert_refused(
        ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(hs256(claims(exp=int(NOW) + week))), "lifetime"
    )
    # Without iat the lifetime is counted from now.
    assert_refused(
        ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(hs256(claims(iat=None, exp=int(NOW) + week))), "lifetime"
    )


@pytest.mark.parametrize("token", [None, "", "   ", "garbage", "a.b.c", "a.b", "Bearer ", "x" * 9000, "e30.e30.e30"])
def test_garbage_is_refused(verifier: TokenVerifier, token: str | None) -> None:
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(token))


async def test_async_verify_refuses_like_verify_local(verifier: TokenVerifier) -> None:
    with pytest.raises(DomainError) as exc:
        await verifier.verify(hs256(claims(), secret="x" * 40))
    assert exc.value.code is ErrorCode.UNAUTHENTICATED


def test_issuer_and_audience_are_enforced_when_configured() -> None:
    settings = auth_settings(
        altbach={"algorithm": "HS256", "secret": SECRET_A, "issuer": "https://idp.altbach", "audience": "vo"}
    )
    v = TokenVerifier(settings, clock=clock)
    assert v.verify_local(hs256(claims(iss="https://idp.altbach", aud="vo"))).actor.municipality_id == "altbach"
    for bad in (claims(aud="vo"), claims(iss="https://evil", aud="vo"), claims(iss="https://idp.altbach", aud="other")):
        assert_refused(ErrorCode.UNAUTHENTICATED, lambda bad=bad: v.verify_local(hs256(bad)))


# --- minting ----------------------------------------------------------------------------


def test_minted_token_verifies(settings: AuthSettings) -> None:
    token = mint_token(
        settings,
        municipality="bergheim",
        user_id="b-7",
        name="Bernd",
        roles=("admin",),
        ttl_seconds=600,
        department="IT",
        job_title="Admin",
        skills=["Linux"],
        now=NOW,
    )
    identity = TokenVerifier(settings, clock=clock).verify_local(token)
    assert identity.actor.municipality_id == "bergheim"
    assert identity.actor.roles == frozenset({Role.ADMIN})
    assert identity.actor.profile == Profile(department="IT", job_title="Admin", skills=("Linux",))
    assert identity.expires_at == NOW + 600
    assert identity.token_id


@pytest.mark.parametrize(
    "kwargs",
    [
        {"municipality": "atlantis"},
        {"roles": ["mayor"]},
        {"roles": []},
        {"ttl_seconds": 0},
        {"ttl_seconds": 86401},
    ],
)
def test_mint_token_refuses_what_would_not_verify(settings: AuthSettings, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"municipality": "altbach", "user_id": "u", "name": "U"} | kwargs
    with pytest.raises(ValueError):
        mint_token(settings, **args)


def test_mint_token_refuses_rs256_municipalities(rsa_key: rsa.RSAPrivateKey) -> None:
    settings = auth_settings(seefeld={"algorithm": "RS256", "public_key": public_pem(rsa_key)})
    with pytest.raises(ValueError, match="HS256"):
        mint_token(settings, municipality="seefeld", user_id="u", name="U")


# --- RS256 with a static key ------------------------------------------------------------


def rs256(payload: dict[str, Any], key: rsa.RSAPrivateKey, kid: str | None = None) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def test_rs256_token_verifies_with_a_pem_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "public_key": public_pem(rsa_key)}), clock=clock)
    assert v.verify_local(rs256(claims(municipality="seefeld"), rsa_key)).actor.municipality_id == "seefeld"


def test_rs256_token_verifies_with_a_public_key_file(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    key_file = tmp_path / "seefeld.pem"
    key_file.write_text(public_pem(rsa_key))
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "public_key_file": str(key_file)}), clock=clock)
    assert v.verify_local(rs256(claims(municipality="seefeld"), rsa_key)).actor.user_id == "u-100"


def test_rs256_token_signed_by_another_key_is_refused(
    rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "public_key": public_pem(rsa_key)}), clock=clock)
    token = rs256(claims(municipality="seefeld"), other_rsa_key)
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: v.verify_local(token), "signature")


def test_hs256_token_signed_with_the_public_key_is_refused_for_rs256(rsa_key: rsa.RSAPrivateKey) -> None:
    # Algorithm confusion: the public key is public, so an attacker can use it as an
    # HMAC secret. A verifier that trusted the header's alg would accept this.
    pem = public_pem(rsa_key)
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "public_key": pem}), clock=clock)
    token = forge(
        {"alg": "HS256", "typ": "JWT"},
        claims(municipality="seefeld", roles=["admin"]),
        lambda data: hmac.new(pem.encode(), data, hashlib.sha256).digest(),
    )
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: v.verify_local(token), "algorithm")


def test_rs256_token_is_refused_for_an_hs256_municipality(rsa_key: rsa.RSAPrivateKey, verifier: TokenVerifier) -> None:
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: verifier.verify_local(rs256(claims(), rsa_key)), "algorithm")


def test_unreadable_or_malformed_key_material_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="public_key_file: cannot read"):
        TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "public_key_file": str(tmp_path / "missing.pem")}))
    with pytest.raises(ConfigError, match="public_key: not a PEM"):
        TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "public_key": "not a key"}))


# --- RS256 from a JWKS endpoint (real HTTP) -----------------------------------------------


class Jwks:
    """A JWKS endpoint on 127.0.0.1 that counts how often it is asked."""

    def __init__(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.document = {"keys": [jwk | {"kid": kid, "use": "sig", "alg": "RS256"}]}
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response(self.document)


@pytest.fixture
async def jwks(aiohttp_server: Any, rsa_key: rsa.RSAPrivateKey) -> tuple[Jwks, str]:
    endpoint = Jwks(rsa_key, kid="key-1")
    app = web.Application()
    app.router.add_get("/certs", endpoint.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return endpoint, str(server.make_url("/certs"))


async def test_jwks_key_is_fetched_once_and_cached(rsa_key: rsa.RSAPrivateKey, jwks: tuple[Jwks, str]) -> None:
    endpoint, url = jwks
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "jwks_url": url}), clock=clock)
    token = rs256(claims(municipality="seefeld", sub="s-1"), rsa_key, kid="key-1")

    # Nothing cached yet: the local path must not fetch.
    assert_refused(ErrorCode.UNAUTHENTICATED, lambda: v.verify_local(token), "not cached")
    assert endpoint.requests == 0

    assert (await v.verify(token)).actor.user_id == "s-1"
    assert (await v.verify(token)).actor.user_id == "s-1"
    assert v.verify_local(token).actor.user_id == "s-1"
    assert endpoint.requests == 1


async def test_jwks_token_with_unknown_or_missing_kid_is_refused(
    rsa_key: rsa.RSAPrivateKey, jwks: tuple[Jwks, str]
) -> None:
    _, url = jwks
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "jwks_url": url}), clock=clock)
    with pytest.raises(DomainError) as exc:
        await v.verify(rs256(claims(municipality="seefeld"), rsa_key, kid="key-unknown"))
    assert exc.value.code is ErrorCode.UNAUTHENTICATED
    with pytest.raises(DomainError) as exc:
        await v.verify(rs256(claims(municipality="seefeld"), rsa_key))
    assert exc.value.code is ErrorCode.UNAUTHENTICATED


async def test_jwks_token_signed_by_another_key_with_a_known_kid_is_refused(
    other_rsa_key: rsa.RSAPrivateKey, jwks: tuple[Jwks, str]
) -> None:
    _, url = jwks
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "jwks_url": url}), clock=clock)
    with pytest.raises(DomainError) as exc:
        await v.verify(rs256(claims(municipality="seefeld"), other_rsa_key, kid="key-1"))
    assert exc.value.code is ErrorCode.UNAUTHENTICATED


async def test_unreachable_jwks_endpoint_is_unavailable(rsa_key: rsa.RSAPrivateKey) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/certs"
    v = TokenVerifier(auth_settings(seefeld={"algorithm": "RS256", "jwks_url": url}), clock=clock)
    started = time.monotonic()
    with pytest.raises(DomainError) as exc:
        await v.verify(rs256(claims(municipality="seefeld"), rsa_key, kid="key-1"))
    assert exc.value.code is ErrorCode.UNAVAILABLE
    assert time.monotonic() - started < 5
