"""Where the identity provider settings of runtime municipalities are kept.

A municipality added by a platform admin (docs/onboarding.md) needs, besides its
entry on the campus (``rooms`` keeps id and name), what a configured one has in
``auth.municipalities``: how its tokens are verified and which browser origins
it allows. One :class:`TenantRecord` holds that.

Contract for every implementation:

* ``create`` is atomic and refuses an id that exists (returns False): of two
  platform admins adding the same id at once, on one node or two, exactly one wins.
* ``replace`` changes an existing record only (returns False for an unknown id).
* After a write returns, the record is durable (for durable backends) and the
  next ``load`` / ``get`` on any node sharing the store returns it, equal.
* Backends do no validation or authorisation:
  :class:`presence_server.tenants.platform.PlatformService` does.
* A backend that cannot be reached raises :class:`rooms.errors.StoreUnavailable`.

The stored form holds the HS256 secret of a development municipality in clear
(a key must be usable); production refuses secrets for runtime municipalities
(public keys and JWKS URLs only), so nothing secret is stored there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from presence_server.config import MunicipalityAuth

__all__ = ["TenantRecord", "TenantStore"]


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A municipality added at runtime: how its tokens are verified, where its pages run."""

    id: str
    auth: MunicipalityAuth  # allowed_origins included; no webhooks at runtime
    updated_at: float

    def to_json(self) -> str:
        """The stored form (the secret included, see the module docstring)."""
        conf = self.auth
        auth: dict[str, Any] = {
            "algorithm": conf.algorithm,
            "secret": conf.secret.get_secret_value() if conf.secret is not None else None,
            "public_key": conf.public_key,
            "jwks_url": conf.jwks_url,
            "issuer": conf.issuer,
            "audience": conf.audience,
            "allowed_origins": list(conf.allowed_origins),
        }
        return json.dumps({"id": self.id, "auth": auth, "updated_at": self.updated_at}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> TenantRecord:
        d = json.loads(text)
        auth = {k: v for k, v in d["auth"].items() if v is not None}
        return cls(id=str(d["id"]), auth=MunicipalityAuth.model_validate(auth), updated_at=float(d["updated_at"]))


class TenantStore(Protocol):
    """The runtime municipalities, shared by every node of a deployment (see module docstring)."""

    async def open(self) -> None:
        """Connect / create the schema. Idempotent."""

    async def close(self) -> None:
        """Release resources. Idempotent."""

    async def load(self) -> dict[str, TenantRecord]:
        """Every record, by municipality id."""

    async def get(self, municipality_id: str) -> TenantRecord | None: ...

    async def create(self, record: TenantRecord) -> bool:
        """Store a new record; False (and nothing written) if the id exists."""

    async def replace(self, record: TenantRecord) -> bool:
        """Overwrite an existing record; False (and nothing written) if there is none."""
