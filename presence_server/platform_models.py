"""Typed bodies of the platform administration API (:mod:`presence_server.platform_rest`),
and their part of the OpenAPI document (merged by :mod:`presence_server.openapi`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Callable, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError, field_validator

from presence_server.config import MunicipalityAuth
from rooms.errors import DomainError, ErrorCode

__all__ = [
    "AuthIn",
    "MunicipalityCreate",
    "MunicipalityPatch",
    "CooperationCreate",
    "CooperationPatch",
    "MembersPut",
    "MemberAdd",
    "platform_schemas",
    "platform_paths",
]

#: As in auth.municipalities: lowercase, so the id could move into the config file later.
_MUNICIPALITY_ID: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_CAMPUS_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ORIGIN: Final = re.compile(r"^https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")
_ORIGINS_MAX: Final = 50

MunicipalityId = Annotated[str, StringConstraints(pattern=_MUNICIPALITY_ID)]
CampusId = Annotated[str, StringConstraints(pattern=_CAMPUS_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AuthIn(_Body):
    """A municipality's identity provider: RS256 with ``key`` (PEM) or ``jwks_url``;
    HS256 with ``secret`` (development mode only)."""

    algorithm: Literal["HS256", "RS256"]
    key: Annotated[str, StringConstraints(min_length=1, max_length=16384)] | None = None
    jwks_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2048)] | None = None
    secret: Annotated[SecretStr, Field(min_length=16, max_length=512)] | None = None
    issuer: Short | None = None
    audience: Short | None = None

    def to_settings(self, origins: list[str]) -> MunicipalityAuth:
        given = [name for name in ("key", "jwks_url", "secret") if getattr(self, name) is not None]
        if self.algorithm == "HS256" and given != ["secret"]:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "auth: HS256 takes a secret (and nothing else)", field="auth")
        if self.algorithm == "RS256" and given not in (["key"], ["jwks_url"]):
            raise DomainError(
                ErrorCode.INVALID_PAYLOAD, "auth: RS256 takes exactly one of key (PEM) or jwks_url", field="auth"
            )
        try:
            return MunicipalityAuth(
                algorithm=self.algorithm,
                secret=self.secret,
                public_key=self.key,
                jwks_url=self.jwks_url,
                issuer=self.issuer,
                audience=self.audience,
                allowed_origins=origins,
            )
        except ValidationError:  # not reached after the checks above; never echo the input (a secret)
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "auth: not usable", field="auth") from None


def _origins(value: list[str]) -> list[str]:
    clean = [o.rstrip("/") for o in value]
    bad = [o for o in clean if not _ORIGIN.match(o)]
    if bad:
        raise ValueError(f"{bad[0][:80]!r} is not an origin scheme://host[:port]")
    return list(dict.fromkeys(clean))


Origins = Annotated[list[str], Field(max_length=_ORIGINS_MAX)]


class MunicipalityCreate(_Body):
    id: MunicipalityId
    name: Name
    auth: AuthIn
    origins: Origins = Field(default_factory=list)

    _check_origins = field_validator("origins")(_origins)


class MunicipalityPatch(_Body):
    name: Name | None = None
    auth: AuthIn | None = None
    origins: Origins | None = None

    @field_validator("origins")
    @classmethod
    def _check_origins(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _origins(value)


Members = Annotated[list[CampusId], Field(max_length=200)]


class CooperationCreate(_Body):
    id: CampusId
    name: Name
    members: Members


class CooperationPatch(_Body):
    name: Name


class MembersPut(_Body):
    members: Members


class MemberAdd(_Body):
    municipality: CampusId


_BODIES: Final[tuple[type[BaseModel], ...]] = (
    MunicipalityCreate, MunicipalityPatch, CooperationCreate, CooperationPatch, MembersPut, MemberAdd,
)


def platform_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _BODIES:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def platform_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """``op(summary, body=..., ok=...)`` is the document's operation builder."""
    mid = {"name": "municipality_id", "in": "path", "required": True, "schema": {"type": "string"}}
    cid = {"name": "cooperation_id", "in": "path", "required": True, "schema": {"type": "string"}}
    base = "/api/v1/platform"
    who = " (platform admins: auth.platform_admins; docs/onboarding.md)"
    return {
        f"{base}/municipalities": {
            "get": op("Every municipality, without secrets" + who),
            "post": op("Add a municipality with its identity provider and origins" + who,
                       body=MunicipalityCreate, ok="201"),
        },
        f"{base}/municipalities/{{municipality_id}}": {
            "parameters": [mid],
            "patch": op("Change a runtime municipality: name, auth, origins" + who, body=MunicipalityPatch),
        },
        f"{base}/cooperations": {
            "get": op("Every cooperation" + who),
            "post": op("Add a cooperation" + who, body=CooperationCreate, ok="201"),
        },
        f"{base}/cooperations/{{cooperation_id}}": {
            "parameters": [cid],
            "patch": op("Rename a cooperation" + who, body=CooperationPatch),
        },
        f"{base}/cooperations/{{cooperation_id}}/members": {
            "parameters": [cid],
            "put": op("Set the members" + who, body=MembersPut),
            "post": op("Add one member" + who, body=MemberAdd),
        },
        f"{base}/cooperations/{{cooperation_id}}/members/{{municipality_id}}": {
            "parameters": [cid, mid],
            "delete": op("Remove one member; its staff lose the floors (floor.revoked)" + who),
        },
    }
