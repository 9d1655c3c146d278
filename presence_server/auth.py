"""Token verification: a signed JWT in, an :class:`~rooms.actors.Actor` out.

Each municipality brings its own identity provider, so the key is chosen by the
token's ``municipality`` claim, read *before* the signature is checked. That is
safe because the claim only selects which key must have signed the token: a token
signed with Altbach's key but claiming Bergheim fails Bergheim's signature check.

The algorithm comes from configuration, never from the token header. Accepting the
header's ``alg`` would let an attacker sign an HS256 token with an RS256
municipality's *public* key as the HMAC secret (algorithm confusion), or send
``alg: none``.

Claims (all validated, extra claims ignored):

* ``sub`` user id (1-128 chars), ``name`` display name (1-80), ``municipality``,
  ``roles`` (non-empty list of ``staff``/``admin``/``guest``), ``exp`` (required);
* optional ``iat``, ``nbf``, ``jti``, ``department``, ``job_title``, ``skills``
  (<= 20 strings of <= 60 chars); ``iss``/``aud`` when the municipality configures them.

Guest tokens of invitation links (docs/projects.md, "Invitations") are the
platform's own: ``iss`` is :data:`~presence_server.config_invitations.INVITATION_ISSUER`,
signed HS256 with ``invitations.signing_secret`` and checked only against it
(never a town's key, and a town's token never against it), with ``roles``
exactly ``["guest"]``, ``project`` (the project the guest is confined to) and
``inv`` (the invitation, so its sessions can be found and ended). The
``municipality`` is the host town's, which must be configured.

Failures raise :class:`~rooms.errors.DomainError`: ``TOKEN_EXPIRED`` for an
expired token, ``UNAUTHENTICATED`` for everything else (with a short reason that
never echoes key material), ``UNAVAILABLE`` when a JWKS endpoint cannot be reached.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from presence_server.config import AuthSettings, ConfigError, MunicipalityAuth
from presence_server.config_invitations import INVITATION_ISSUER
from rooms.actors import Actor, Profile, Role
from rooms.errors import DomainError, ErrorCode, StoreUnavailable

__all__ = [
    "Identity",
    "TokenVerifier",
    "check_municipality_auth",
    "mint_token",
    "mint_guest_token",
    "MAX_TOKEN_CHARS",
    "JWKS_CACHE_SECONDS",
    "JWKS_TIMEOUT_SECONDS",
]

#: Longer strings are refused before any parsing: a cheap guard on every connect.
MAX_TOKEN_CHARS: Final = 8192
#: How long a fetched JWK set is trusted. Bounds how long a key removed by the
#: identity provider (rotated out, compromised) still verifies tokens.
JWKS_CACHE_SECONDS: Final = 300
#: JWKS fetches run in a worker thread; a slow provider must not hold a connect forever.
JWKS_TIMEOUT_SECONDS: Final = 5


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified token: who, and until when."""

    actor: Actor
    expires_at: float  # unix seconds
    token_id: str | None  # the jti claim, if present
    #: Set for a guest token of an invitation link (signed by this platform).
    invitation_id: str | None = None


def _unauthenticated(reason: str) -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, reason)


class _UnknownMunicipality(DomainError):
    """``UNAUTHENTICATED``: the token names a municipality this node does not know."""

    def __init__(self, municipality: str) -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, "unknown municipality")
        self.municipality = municipality[:64]


# --- claims -----------------------------------------------------------------------------

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Claims(BaseModel):
    # extra="ignore": identity providers add their own claims (azp, scope, ...).
    # strict: a claim of the wrong JSON type is refused, not coerced ("123" is no exp);
    # no NaN/Infinity (Python's json accepts them): NaN compares false and never expires.
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    sub: Annotated[_Text, StringConstraints(max_length=128)]
    name: Annotated[_Text, StringConstraints(max_length=80)]
    municipality: str
    roles: Annotated[list[Literal["staff", "admin", "guest"]], Field(min_length=1)]
    exp: float
    iat: float | None = None
    nbf: float | None = None
    jti: str | None = None
    department: Annotated[str, StringConstraints(max_length=120)] | None = None
    job_title: Annotated[str, StringConstraints(max_length=120)] | None = None
    skills: Annotated[list[Annotated[str, StringConstraints(max_length=60)]], Field(max_length=20)] = Field(
        default_factory=list
    )


_Ref = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class _GuestClaims(_Claims):
    """A guest token of an invitation link: confined to ``project``, found by ``inv``."""

    roles: Annotated[list[Literal["guest"]], Field(min_length=1, max_length=1)]  # type: ignore[assignment]  # narrowed: guests only
    project: _Ref
    inv: _Ref


def _claims_from(payload: dict[str, Any], model: type[_Claims] = _Claims) -> _Claims:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        claim = str(first["loc"][0]) if first["loc"] else "?"
        if first["type"] == "missing":
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"missing claim '{claim}'") from None
        raise DomainError(ErrorCode.UNAUTHENTICATED, f"invalid claim '{claim}'") from None


def _b64_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _peek(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, *unverified*: only to choose the key.

    Hand-rolled because PyJWT's unverified decoding costs more than the signature
    check; PyJWT still parses and verifies the token properly afterwards.
    """
    parts = raw.split(".")
    if len(parts) != 3:
        raise _unauthenticated("malformed token")
    try:
        header, payload = _b64_json(parts[0]), _b64_json(parts[1])
    except (ValueError, TypeError):  # binascii.Error, UnicodeDecodeError, JSONDecodeError
        raise _unauthenticated("malformed token") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise _unauthenticated("malformed token")
    return header, payload


# --- keys -------------------------------------------------------------------------------


class _JwksKeys:
    """Signing keys from a JWKS endpoint, fetched lazily and cached.

    ``PyJWKClient`` does the fetching and the caching: the whole key set for
    :data:`JWKS_CACHE_SECONDS`, with a cooldown on refreshes forced by unknown key
    ids, so a flood of tokens with made-up ``kid`` values cannot hammer the
    provider. Its per-kid LRU (``cache_keys``) is deliberately off: it never expires,
    so a key the provider withdrew would verify forever.
    """

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS)

    def cached(self, kid: str) -> Any | None:
        """The key for ``kid`` if the cached set is fresh and has it; never does I/O."""
        cache = self._client.jwk_set_cache
        data = cache.get() if cache is not None else None
        if data is None:
            return None
        # PyJWT < 2.10 caches the raw JSON, later versions the parsed set.
        jwk_set = data if isinstance(data, jwt.PyJWKSet) else jwt.PyJWKSet.from_dict(data)
        for jwk in jwk_set.keys:
            if jwk.key_id == kid and jwk.public_key_use in ("sig", None):
                return jwk.key
        return None

    def fetch(self, kid: str) -> Any:
        """The key for ``kid``, fetching the set if needed. Blocking: run in a thread."""
        try:
            return self._client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError:
            raise DomainError(ErrorCode.UNAVAILABLE, "cannot fetch the identity provider's keys") from None
        except jwt.PyJWKClientError:
            raise _unauthenticated("unknown signing key") from None


@dataclass(frozen=True, slots=True)
class _Verifier:
    """Everything needed to check one municipality's tokens, decoded once."""

    algorithm: str
    key: Any | None  # bytes for HS256, an RSA public key object, or None for JWKS
    jwks: _JwksKeys | None
    issuer: str | None
    audience: str | None
    #: The platform's verifier of invitation guest tokens, not a town's.
    guest: bool = False


def _build_verifier(mid: str, conf: MunicipalityAuth, *, where: str | None = None) -> _Verifier:
    where = where or f"auth.municipalities.{mid}"
    key: Any | None = None
    jwks: _JwksKeys | None = None
    if conf.algorithm == "HS256":
        assert conf.secret is not None  # guaranteed by MunicipalityAuth
        key = conf.secret.get_secret_value().encode()
    elif conf.jwks_url is not None:
        try:
            jwks = _JwksKeys(conf.jwks_url)
        except jwt.PyJWKClientError as exc:
            raise ConfigError([f"{where}.jwks_url: {exc}"]) from None
    else:
        if conf.public_key is not None:
            pem, field = conf.public_key.encode(), "public_key"
        else:
            assert conf.public_key_file is not None  # guaranteed by MunicipalityAuth
            field = "public_key_file"
            try:
                pem = Path(conf.public_key_file).read_bytes()
            except OSError as exc:
                raise ConfigError([f"{where}.public_key_file: cannot read {conf.public_key_file} ({exc.strerror})"]) from None
        try:
            key = load_pem_public_key(pem)
        except ValueError:
            raise ConfigError([f"{where}.{field}: not a PEM-encoded public key"]) from None
        if not isinstance(key, RSAPublicKey):
            raise ConfigError([f"{where}.{field}: RS256 needs an RSA public key"])
    return _Verifier(conf.algorithm, key, jwks, conf.issuer, conf.audience)


def check_municipality_auth(mid: str, conf: MunicipalityAuth) -> None:
    """Refuse (``INVALID_PAYLOAD`` naming the field under ``auth``) identity provider
    settings that cannot verify a token: a key that is not an RSA public key in
    PEM, a JWKS URL PyJWT cannot use. Does no network I/O."""
    try:
        _build_verifier(mid, conf, where="auth")
    except ConfigError as exc:
        problem = exc.problems[0]
        field = problem.split(":", 1)[0].replace("public_key", "key")
        raise DomainError(
            ErrorCode.INVALID_PAYLOAD, problem.replace("auth.public_key", "auth.key"), field=field
        ) from None


# --- the verifier -----------------------------------------------------------------------


class TokenVerifier:
    """Verifies tokens against the known municipalities: the registry of who may sign in.

    Two sources, merged: the configured municipalities (``auth.municipalities``,
    fixed for the life of the process and authoritative for their ids) and those a
    platform admin added at runtime (:meth:`put_runtime`, fed by
    :class:`presence_server.tenants.service.TenantService` from the tenant store).

    Construction decodes every static key once (and raises :class:`ConfigError`
    for unreadable or malformed key material), so verifying costs one signature
    check and one small validation. JWKS keys are fetched on first use.
    ``clock`` supplies "now" for exp/nbf/iat checks (tests pass a fixed clock).
    ``on_unknown`` (set by the tenant service in cluster mode) is asked, by
    :meth:`verify` only, about a municipality this node does not know yet: it may
    load it (another node just added it) and answer whether it did.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = time.time,
        invitation_secret: str | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._verifiers: dict[str, _Verifier] = {
            mid: _build_verifier(mid, conf) for mid, conf in settings.municipalities.items()
        }
        self._runtime: dict[str, MunicipalityAuth] = {}
        self.on_unknown: Callable[[str], Awaitable[bool]] | None = None
        # Pinned: HS256, this issuer, this key. Never used for a token without the issuer.
        self._guest: _Verifier | None = (
            None
            if invitation_secret is None
            else _Verifier("HS256", invitation_secret.encode(), None, INVITATION_ISSUER, None, guest=True)
        )
        self._guest_check: Callable[[Identity], Awaitable[None]] | None = None

    def set_guest_check(self, check: Callable[[Identity], Awaitable[None]]) -> None:
        """Run ``check`` on every verified guest token of an invitation in :meth:`verify`
        (connect, ``auth.refresh``, REST): it raises for a revoked invitation."""
        self._guest_check = check

    @property
    def municipalities(self) -> frozenset[str]:
        return frozenset(self._verifiers)

    def is_configured(self, mid: str) -> bool:
        """Is ``mid`` in ``auth.municipalities`` (and so never changed at runtime)?"""
        return mid in self._settings.municipalities

    def auth_for(self, mid: str) -> MunicipalityAuth | None:
        """The settings tokens of ``mid`` are verified with, configured or runtime."""
        return self._settings.municipalities.get(mid) or self._runtime.get(mid)

    @property
    def runtime(self) -> Mapping[str, MunicipalityAuth]:
        return dict(self._runtime)

    def put_runtime(self, mid: str, conf: MunicipalityAuth) -> None:
        """Verify ``mid``'s tokens with ``conf`` from now on (added or changed at runtime).

        ``ValueError`` for a configured municipality: the file stays authoritative.
        Unchanged settings keep their verifier (and its cached JWK set)."""
        if self.is_configured(mid):
            raise ValueError(f"municipality {mid!r} is configured in auth.municipalities")
        if self._runtime.get(mid) == conf and mid in self._verifiers:
            return
        verifier = _build_verifier(mid, conf, where=f"runtime municipality {mid}")
        self._runtime[mid] = conf
        self._verifiers[mid] = verifier

    def drop_runtime(self, mid: str) -> None:
        """Stop accepting tokens of a runtime municipality (no-op for configured ones)."""
        if mid in self._runtime:
            del self._runtime[mid]
            self._verifiers.pop(mid, None)

    async def verify(self, token: str | None) -> Identity:
        """Verify ``token`` (optionally prefixed ``Bearer ``); may fetch a JWKS in a thread."""
        try:
            raw, verifier, header = self._inspect(token)
        except _UnknownMunicipality as unknown:
            if self.on_unknown is None or not await self.on_unknown(unknown.municipality):
                raise
            raw, verifier, header = self._inspect(token)
        key = verifier.key
        if verifier.jwks is not None:
            kid = self._kid(header)
            key = verifier.jwks.cached(kid)
            if key is None:
                # PyJWKClient uses blocking urllib; keep the event loop free.
                key = await asyncio.to_thread(verifier.jwks.fetch, kid)
        identity = self._check(raw, verifier, key)
        if identity.invitation_id is not None:
            if self._guest_check is None:
                raise _unauthenticated("invitations are not set up")
            try:
                await self._guest_check(identity)
            except StoreUnavailable:
                raise DomainError(ErrorCode.UNAVAILABLE) from None
        return identity

    def verify_local(self, token: str | None) -> Identity:
        """Like :meth:`verify`, but never does network I/O.

        A token whose JWKS key is not in the cache is refused as ``UNAUTHENTICATED``.
        A guest token's invitation is not checked (that needs the store).
        """
        raw, verifier, header = self._inspect(token)
        key = verifier.key
        if verifier.jwks is not None:
            key = verifier.jwks.cached(self._kid(header))
            if key is None:
                raise _unauthenticated("signing key not cached")
        return self._check(raw, verifier, key)

    # -- steps

    def _inspect(self, token: str | None) -> tuple[str, _Verifier, dict[str, Any]]:
        """Pick the municipality's verifier from the *unverified* token."""
        if not isinstance(token, str) or not token.strip():
            raise _unauthenticated("missing token")
        raw = token.strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        if len(raw) > MAX_TOKEN_CHARS:
            raise _unauthenticated("token too long")
        header, unverified = _peek(raw)
        municipality = unverified.get("municipality")
        if not isinstance(municipality, str):
            raise _unauthenticated("missing claim 'municipality'")
        verifier = self._verifiers.get(municipality)
        if verifier is None:
            raise _UnknownMunicipality(municipality)
        if unverified.get("iss") == INVITATION_ISSUER:
            # An invitation's guest token: only the platform key may have signed it.
            if self._guest is None:
                raise _unauthenticated("invitations are not configured")
            return raw, self._guest, header
        return raw, verifier, header

    @staticmethod
    def _kid(header: dict[str, Any]) -> str:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthenticated("token has no key id")
        return kid

    def _check(self, raw: str, verifier: _Verifier, key: Any) -> Identity:
        options: jwt.types.Options = {
            # Time claims are checked below against the injectable clock.
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            # sub/jti are validated with the other claims, for one kind of message.
            "verify_sub": False,
            "verify_jti": False,
            "require": ["exp"],
        }
        try:
            payload = jwt.decode(
                raw,
                key,
                algorithms=[verifier.algorithm],  # pinned: the header's alg is not trusted
                options=options,
                issuer=verifier.issuer,
                audience=verifier.audience,
            )
        except jwt.InvalidAlgorithmError:
            raise _unauthenticated("algorithm not allowed") from None
        except jwt.InvalidSignatureError:
            raise _unauthenticated("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthenticated(f"missing claim '{exc.claim}'") from None
        except jwt.InvalidIssuerError:
            raise _unauthenticated("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise _unauthenticated("wrong audience") from None
        except (jwt.PyJWTError, TypeError, ValueError):
            # TypeError/ValueError: a JWKS key of the wrong type for the pinned algorithm.
            raise _unauthenticated("invalid token") from None

        claims = _claims_from(payload, _GuestClaims if verifier.guest else _Claims)
        self._check_times(claims)
        guest = claims if isinstance(claims, _GuestClaims) else None
        actor = Actor(
            user_id=claims.sub,
            municipality_id=claims.municipality,
            display_name=claims.name,
            roles=frozenset(Role(r) for r in claims.roles),
            profile=Profile(
                department=claims.department or None,
                job_title=claims.job_title or None,
                skills=tuple(claims.skills),
            ),
            project=None if guest is None else guest.project,
        )
        return Identity(
            actor=actor, expires_at=claims.exp, token_id=claims.jti, invitation_id=None if guest is None else guest.inv
        )

    def _check_times(self, claims: _Claims) -> None:
        now = self._clock()
        leeway = self._settings.leeway_seconds
        if now > claims.exp + leeway:
            raise DomainError(ErrorCode.TOKEN_EXPIRED)
        if claims.nbf is not None and claims.nbf > now + leeway:
            raise _unauthenticated("token not yet valid")
        if claims.iat is not None and claims.iat > now + leeway:
            raise _unauthenticated("token issued in the future")
        # A stolen long-lived token is a long-lived problem: cap lifetimes here even
        # if an identity provider is configured generously.
        issued = claims.iat if claims.iat is not None else now
        if claims.exp - issued > self._settings.max_token_ttl_seconds:
            raise _unauthenticated(f"token lifetime exceeds {self._settings.max_token_ttl_seconds} s")


# --- minting (development and tests) ----------------------------------------------------


def mint_token(
    settings: AuthSettings,
    *,
    municipality: str,
    user_id: str,
    name: str,
    roles: Sequence[str] = ("staff",),
    ttl_seconds: int = 3600,
    department: str | None = None,
    job_title: str | None = None,
    skills: Sequence[str] = (),
    now: float | None = None,
    conf: MunicipalityAuth | None = None,
) -> str:
    """Sign a token for an HS256 municipality, as its identity provider would.

    For dev mode and tests only; callers decide whether minting is allowed. Raises
    :class:`ValueError` for an unknown or non-HS256 municipality, an unknown role or
    a ``ttl_seconds`` outside ``1..max_token_ttl_seconds`` (such a token would be
    refused anyway). Adds ``iss``/``aud`` when the municipality configures them.
    ``conf`` gives the settings of a municipality that is not in ``settings``
    (added at runtime: :meth:`TokenVerifier.auth_for`).
    """
    conf = conf or settings.municipalities.get(municipality)
    if conf is None:
        known = ", ".join(sorted(settings.municipalities)) or "none configured"
        raise ValueError(f"unknown municipality {municipality!r} (known: {known})")
    if conf.algorithm != "HS256" or conf.secret is None:
        raise ValueError(f"municipality {municipality!r} uses {conf.algorithm}; only HS256 tokens can be minted here")
    valid_roles = {r.value for r in Role}
    unknown = [r for r in roles if r not in valid_roles]
    if unknown or not roles:
        raise ValueError(f"roles must be a non-empty subset of {sorted(valid_roles)}")
    if not 1 <= ttl_seconds <= settings.max_token_ttl_seconds:
        raise ValueError(f"ttl_seconds must be between 1 and {settings.max_token_ttl_seconds}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": user_id,
        "name": name,
        "municipality": municipality,
        "roles": list(dict.fromkeys(roles)),
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if department:
        claims["department"] = department
    if job_title:
        claims["job_title"] = job_title
    if skills:
        claims["skills"] = list(skills)
    if conf.issuer:
        claims["iss"] = conf.issuer
    if conf.audience:
        claims["aud"] = conf.audience
    return jwt.encode(claims, conf.secret.get_secret_value(), algorithm="HS256")


def mint_guest_token(
    secret: str,
    *,
    municipality: str,
    user_id: str,
    name: str,
    project: str,
    invitation_id: str,
    expires_at: float,
    now: float,
) -> str:
    """Sign an invitation's guest token with the platform key (see the module
    docstring): roles ``["guest"]``, confined to ``project``, expiring at ``expires_at``."""
    claims: dict[str, Any] = {
        "iss": INVITATION_ISSUER,
        "sub": user_id,
        "name": name,
        "municipality": municipality,
        "roles": ["guest"],
        "project": project,
        "inv": invitation_id,
        "iat": int(now),
        "exp": int(expires_at),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
