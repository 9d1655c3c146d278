"""Validated settings for the presence server.

Values come from four sources; a higher one wins key by key, so a nested key set
in the environment replaces only that key and keeps its siblings from the file:

1. keyword overrides passed to :func:`load_settings` (the CLI's ``--host``/``--port``),
2. environment variables ``PRESENCE_<SECTION>__<KEY>`` (case-insensitive; e.g.
   ``PRESENCE_HTTP__PORT=9000``, ``PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__SECRET=...``),
3. the TOML file given to :func:`load_settings`,
4. the defaults below.

Every model forbids unknown keys: a typo stops start-up instead of being ignored.
Relative paths (``storage.sqlite_path``, ``campus.seed_file``,
``auth.municipalities.*.public_key_file``) are relative to the working directory,
not to the config file.

:func:`load_settings` is the only entry point that reports problems nicely: it
raises :class:`ConfigError`, whose message has one line per problem naming the
dotted key.
"""

from __future__ import annotations

import contextvars
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from presence_server.config_metrics import MetricsSettings, metrics_problems
from presence_server.config_invitations import InvitationSettings, invitation_problems
from presence_server.config_portal import (
    MunicipalityDirectorySettings,
    PortalSettings,
    WebhookSettings,
    check_webhook_names,
    webhook_problems,
)
from presence_server.config_projects import ProjectSettings
from rooms.project import ProjectPolicy

__all__ = [
    "ConfigError",
    "HttpSettings",
    "LogSettings",
    "StorageSettings",
    "CampusSettings",
    "PresenceSettings",
    "KnockSettings",
    "LimitsSettings",
    "MunicipalityAuth",
    "AuthSettings",
    "RedisSettings",
    "AuditSettings",
    "MetricsSettings",
    "Settings",
    "load_settings",
    "ENV_PREFIX",
    "ENV_NESTED_DELIMITER",
    "MIN_HS256_SECRET_BYTES",
]

ENV_PREFIX: Final = "PRESENCE_"
ENV_NESTED_DELIMITER: Final = "__"
#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_HS256_SECRET_BYTES: Final = 32
#: Municipality ids are the keys of ``auth.municipalities`` and appear in tokens and
#: env var names. Lowercase because env var names are matched case-insensitively and
#: arrive lower-cased; an upper-case id in the file could never be overridden.
_MUNICIPALITY_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: An http(s) origin without path, query or anything a header could be split on.
_ORIGIN: Final = re.compile(r"^https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")


class ConfigError(Exception):
    """The configuration cannot be used. ``str(error)`` is meant for the operator.

    ``problems`` holds one line per problem, each starting with the dotted key it is
    about (``"http.port: ..."``), or with the file for unreadable files.
    """

    def __init__(self, problems: list[str] | tuple[str, ...], *, source: str | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"Invalid configuration{where}:"] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class _Section(BaseModel):
    # frozen: settings are read by many components once the server runs; a change
    # made by one of them behind the others' backs would be a bug.
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=65536, ge=1)
    #: Browser origins, besides the server's own, that may open Socket.IO connections
    #: for any municipality ("*" is not special).
    cors_origins: list[str] = Field(default_factory=list)
    #: The server's own origin as browsers reach it (``https://office.example.org``),
    #: when a proxy in front does not pass ``Host`` / ``X-Forwarded-Host`` on. Allowed
    #: like the request's own origin, and listed in the embed page's frame-ancestors.
    public_url: str | None = None

    @field_validator("public_url", mode="after")
    @classmethod
    def _plain_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        origin = value.rstrip("/")
        if not _ORIGIN.match(origin):
            raise ValueError("must be a plain origin scheme://host[:port], e.g. https://office.example.org")
        return origin


def _lower(value: Any) -> Any:
    # Env vars are often written in upper case (PRESENCE_LOG__LEVEL=DEBUG).
    return value.lower() if isinstance(value, str) else value


class LogSettings(_Section):
    level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = "info"
    format: Annotated[Literal["console", "json"], BeforeValidator(_lower)] = "json"


class StorageSettings(_Section):
    backend: Literal["memory", "sqlite"] = "sqlite"
    sqlite_path: str = "var/campus.sqlite3"


class CampusSettings(_Section):
    #: A campus TOML seeded into the store on first start (when the store is empty).
    seed_file: str | None = None
    #: Longest pause between checks for expired project rooms (new expiries wake it).
    expiry_sweep_seconds: float = Field(default=30, gt=0)
    #: Migration from release 0.1, where owners were bare user ids: the municipality
    #: of each bare owner id that sits on a *cooperation* floor (ambiguous there).
    #: Bare owners on a municipality's floor belong to that municipality anyway.
    legacy_owners: dict[str, str] = Field(default_factory=dict)


class PresenceSettings(_Section):
    #: How long a user stays present after their last connection drops (reconnects).
    grace_seconds: float = Field(default=15, ge=0, le=600)
    status_text_max: int = Field(default=140, ge=0, le=1000)


class KnockSettings(_Section):
    timeout_seconds: float = Field(default=30, ge=1, le=600)
    cooldown_seconds: float = Field(default=20, ge=0, le=3600)
    message_max: int = Field(default=200, ge=0, le=1000)


class LimitsSettings(_Section):
    max_event_bytes: int = Field(default=16384, ge=256, le=1048576)
    events_per_second: float = Field(default=20, gt=0)
    burst: int = Field(default=40, ge=1)
    #: Concurrent Socket.IO sessions of one person (municipality, user id) on this node;
    #: one more is refused with too_many_sessions.
    max_sessions_per_person: int = Field(default=10, ge=1, le=1000)


class FanoutSettings(_Section):
    """How floor changes reach watchers."""

    #: Changes on one floor within this window go out as one frame (0: next loop turn).
    batch_window_ms: float = Field(default=5, ge=0, le=1000)
    #: A watcher with more unsent bytes than this is a slow client and is disconnected.
    #: Counted in the process and in the kernel's send queue (presence_server/sendbuf.py).
    max_send_buffer_bytes: int = Field(default=1_048_576, ge=65_536, le=67_108_864)
    #: SO_SNDBUF of every WebSocket connection, so a client that stops reading cannot
    #: park megabytes in the kernel unseen (Linux doubles it for bookkeeping and stops
    #: auto-tuning; it also enforces a minimum of a few KiB). 0 leaves the kernel's
    #: auto-tuning (up to net.ipv4.tcp_wmem, 4 MiB by default).
    socket_send_buffer_bytes: int = Field(default=65_536, ge=0, le=16_777_216)


class IceSettings(_Section):
    """STUN/TURN servers handed to call members (browser RTCIceServer shape)."""

    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    #: coturn's static-auth-secret (use-auth-secret); per-user credentials are minted from it.
    turn_secret: SecretStr | None = None
    turn_ttl_seconds: int = Field(default=3600, ge=60, le=86400)


class CallSettings(_Section):
    #: Members of a room call in a full mesh; more are refused with call_full (no SFU yet).
    max_mesh: int = Field(default=6, ge=2, le=16)
    #: Largest relayed signalling message (SDP, ICE candidate), in bytes.
    max_signal_bytes: int = Field(default=65536, ge=1024, le=1048576)
    #: A ring nobody answers ends after this long.
    ring_timeout_seconds: float = Field(default=30, ge=1, le=600)


class MunicipalityAuth(_Section):
    """How tokens of one municipality are verified.

    HS256 uses a shared ``secret``; RS256 uses exactly one of ``public_key`` (PEM
    text), ``public_key_file`` (path to a PEM file) or ``jwks_url`` (the identity
    provider's key set). The algorithm is pinned here: a token's own ``alg`` header
    is never trusted. The minimum secret length is checked by :class:`Settings`
    because it depends on ``dev_mode``.
    """

    algorithm: Literal["HS256", "RS256"]
    secret: SecretStr | None = None
    public_key: str | None = None
    public_key_file: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    #: Browser origins this municipality's clients may connect from.
    allowed_origins: list[str] = Field(default_factory=list)
    #: Receivers of this municipality's signed presence and knock events (docs/portal.md).
    webhooks: dict[str, WebhookSettings] = Field(default_factory=dict)
    #: This town's project policy; unset: the platform's ``[projects]`` section.
    projects: ProjectSettings | None = None
    #: Skills this municipality's staff may publish platform-wide (docs/portal.md).
    directory: MunicipalityDirectorySettings = Field(default_factory=MunicipalityDirectorySettings)

    @field_validator("webhooks", mode="after")
    @classmethod
    def _webhook_names(cls, value: dict[str, WebhookSettings]) -> dict[str, WebhookSettings]:
        bad = check_webhook_names(list(value))
        if bad:
            raise ValueError("\n".join(f"{n}: webhook names are lowercase letters, digits, '-' and '_'" for n in bad))
        return value

    @model_validator(mode="after")
    def _key_material_matches_algorithm(self) -> MunicipalityAuth:
        public = {
            name: getattr(self, name)
            for name in ("public_key", "public_key_file", "jwks_url")
            if getattr(self, name) is not None
        }
        # Messages start with the key they are about; ConfigError prefixes the path.
        problems: list[str] = []
        if self.algorithm == "HS256":
            if self.secret is None or not self.secret.get_secret_value():
                problems.append("secret: required for HS256 (set it in the file or in the environment variable {env})")
            problems += [f"{name}: not allowed with HS256 (HS256 uses secret)" for name in public]
        else:
            if self.secret is not None:
                problems.append("secret: not allowed with RS256 (RS256 uses a public key)")
            if len(public) != 1:
                problems.append(
                    "algorithm: RS256 needs exactly one of public_key, public_key_file, jwks_url"
                    f" (got {len(public)})"
                )
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            problems.append("jwks_url: must be an http(s) URL")
        problems += webhook_problems(self.webhooks)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class AuthSettings(_Section):
    #: Clock skew tolerated on exp/nbf/iat.
    leeway_seconds: int = Field(default=30, ge=0, le=600)
    #: A session whose token has expired (exp + leeway) may still refresh it
    #: (auth.refresh) for this long; then the server stops its floor updates and
    #: disconnects it with token_expired.
    refresh_grace_seconds: float = Field(default=60, ge=0, le=3600)
    #: Tokens living longer than this (exp - iat) are refused, however they are signed.
    max_token_ttl_seconds: int = Field(default=86400, ge=1)
    #: Default lifetime of tokens minted by ``presence-server token`` and /dev/token.
    dev_token_ttl_seconds: int = Field(default=28800, ge=1)
    municipalities: dict[str, MunicipalityAuth] = Field(default_factory=dict)
    #: Persons ("municipality/user_id") who may add municipalities and cooperations
    #: and change membership at runtime (docs/onboarding.md). Given here and only
    #: here: no token claim, role or identity provider can make anyone platform
    #: admin. Each must belong to a municipality configured above, never to one
    #: added at runtime, whose identity provider a platform admin chose.
    platform_admins: list[str] = Field(default_factory=list)
    #: Cluster mode: every node re-reads the municipalities added at runtime this
    #: often, in case it missed a change announced on the bus (Redis outage).
    runtime_refresh_seconds: float = Field(default=10, gt=0, le=3600)

    @field_validator("municipalities", mode="after")
    @classmethod
    def _ids_are_lowercase(cls, value: dict[str, MunicipalityAuth]) -> dict[str, MunicipalityAuth]:
        bad = [mid for mid in value if not _MUNICIPALITY_ID.match(mid)]
        if bad:
            raise ValueError(
                "\n".join(
                    f"{mid}: municipality ids are lowercase letters, digits, '-' and '_' (max. 64)" for mid in bad
                )
            )
        return value

    @model_validator(mode="after")
    def _dev_ttl_within_max(self) -> AuthSettings:
        problems: list[str] = []
        if self.dev_token_ttl_seconds > self.max_token_ttl_seconds:
            problems.append(
                f"dev_token_ttl_seconds: must not exceed max_token_ttl_seconds ({self.max_token_ttl_seconds})"
            )
        for person in self.platform_admins:
            municipality, sep, user = person.partition("/")
            if not sep or not user or len(user) > 128 or not _MUNICIPALITY_ID.match(municipality):
                problems.append(f"platform_admins: {person[:80]!r} is not a person id 'municipality/user_id'")
            elif municipality not in self.municipalities:
                problems.append(
                    f"platform_admins: {person!r} belongs to no municipality configured in auth.municipalities"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class RedisSettings(_Section):
    """Cluster mode: set ``url`` and every store and the bus live in Redis
    (read only by :func:`presence_server.backends.make_backends`)."""

    url: str | None = None
    prefix: str = "vo:"


class AuditSettings(_Section):
    """The audit trail of administrative changes and admissions (docs/audit.md)."""

    #: Entries older than this many days are deleted (at least 1: an audit trail
    #: that keeps nothing would be none; 180 days by default).
    retention_days: int = Field(default=180, ge=1, le=3650)
    #: The trail's SQLite file when ``storage.backend = "sqlite"`` and there is no
    #: Redis: a file of its own. None: ``audit.sqlite3`` beside ``storage.sqlite_path``.
    sqlite_path: str | None = None


# --- where the values come from -------------------------------------------------------

#: What the current :func:`load_settings` call wants read: (TOML data, env mapping).
#: A context variable rather than class attributes so concurrent loads (threads, tests)
#: cannot see each other's file, and ``Settings()`` outside load_settings still works.
_LOAD_CONTEXT: contextvars.ContextVar[tuple[dict[str, Any], Mapping[str, str] | None]] = contextvars.ContextVar(
    "presence_settings_load_context"
)


class _TomlDataSource(PydanticBaseSettingsSource):
    """The already-parsed config file (parsed by load_settings, which reports errors)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class _MappingEnvSource(EnvSettingsSource):
    """The standard env source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by _load_env_vars, called from super().__init__
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._environ)
        return {key.lower(): value for key, value in self._environ.items()}


class Settings(BaseSettings):
    """Everything the server reads at start-up. Build it with :func:`load_settings`.

    ``Settings()`` alone reads ``os.environ`` and the defaults (no file) and raises a
    raw :class:`pydantic.ValidationError`.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    #: Enables ``presence-server token``, ``/dev/token``, readable logs and short secrets.
    dev_mode: bool = False
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    campus: CampusSettings = Field(default_factory=CampusSettings)
    presence: PresenceSettings = Field(default_factory=PresenceSettings)
    knock: KnockSettings = Field(default_factory=KnockSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    fanout: FanoutSettings = Field(default_factory=FanoutSettings)
    ice: IceSettings = Field(default_factory=IceSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)
    projects: ProjectSettings = Field(default_factory=ProjectSettings)
    invitations: InvitationSettings = Field(default_factory=InvitationSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    def project_policy(self, municipality: str) -> ProjectPolicy:
        """The policy for projects created by staff of ``municipality``."""
        own = self.auth.municipalities.get(municipality)
        return (own.projects if own is not None and own.projects is not None else self.projects).policy()

    @model_validator(mode="after")
    def _checks_across_sections(self) -> Settings:
        # One validator, so every problem is reported at once.
        problems = metrics_problems(
            self.metrics, http_port=self.http.port, dev_mode=self.dev_mode, min_token_bytes=MIN_HS256_SECRET_BYTES
        )
        problems += invitation_problems(self.invitations, dev_mode=self.dev_mode, min_bytes=MIN_HS256_SECRET_BYTES)
        if not self.dev_mode:
            problems += self._weak_secrets()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _weak_secrets(self) -> list[str]:
        problems = [
            f"auth.municipalities.{mid}.secret: must be at least {MIN_HS256_SECRET_BYTES} bytes"
            " when dev_mode is false"
            for mid, muni in self.auth.municipalities.items()
            if muni.secret is not None and len(muni.secret.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES
        ]
        problems += [
            f"auth.municipalities.{mid}.webhooks.{name}.secret: must be at least {MIN_HS256_SECRET_BYTES} bytes"
            " when dev_mode is false"
            for mid, muni in self.auth.municipalities.items()
            for name, hook in muni.webhooks.items()
            if len(hook.key) < MIN_HS256_SECRET_BYTES
        ]
        return problems

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Order is precedence: init kwargs > env > file > defaults. No dotenv, no
        # secrets dir: deployments inject secrets as env vars.
        data, environ = _LOAD_CONTEXT.get(({}, None))
        env_source = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        return init_settings, env_source, _TomlDataSource(settings_cls, data)


# --- loading ----------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"], source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a file"], source=str(path)) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"], source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"], source=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not valid UTF-8"], source=str(path)) from None


@contextmanager
def _load_context(data: dict[str, Any], env: Mapping[str, str] | None) -> Iterator[None]:
    token = _LOAD_CONTEXT.set((data, env))
    try:
        yield
    finally:
        _LOAD_CONTEXT.reset(token)


def load_settings(path: str | Path | None = None, *, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read, merge and validate the settings.

    ``path`` names a TOML file (``None``: no file). ``env`` replaces ``os.environ``
    as the source of ``PRESENCE_*`` variables (``None``: use ``os.environ``).
    ``overrides`` are top-level keys with plain values, e.g.
    ``http={"port": 9000}``; dicts merge into the lower sources key by key.

    Raises :class:`ConfigError` for a missing or unparseable file and for every
    invalid, out-of-range or unknown key (all problems at once).
    """
    source = str(path) if path is not None else None
    data = _read_toml(Path(path)) if path is not None else {}
    with _load_context(data, env):
        try:
            return Settings(**overrides)
        except ValidationError as exc:
            raise ConfigError(_describe(exc), source=source) from None
        except ValueError as exc:
            # pydantic-settings raises SettingsError (a ValueError) for env values it
            # cannot decode, e.g. malformed JSON in PRESENCE_HTTP__CORS_ORIGINS.
            field = re.search(r'field "([^"]+)"', str(exc))
            section = field.group(1) if field else "?"
            raise ConfigError(
                [f"{section}: a {ENV_PREFIX}{section.upper()}{ENV_NESTED_DELIMITER}* environment variable holds invalid JSON"],
                source=source,
            ) from None


_RELATIVE_KEY: Final = re.compile(r"^([A-Za-z0-9_.\-\[\]]+): (.+)$", re.DOTALL)
_HIDE_INPUT_KEYS: Final = frozenset({"secret", "token"})


def _describe(exc: ValidationError) -> list[str]:
    """One line per problem: ``dotted.key: what is wrong (got value)``."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        if err["type"] == "extra_forbidden":
            lines.append(f"{'.'.join(loc)}: unknown key")
            continue
        if err["type"] == "value_error":
            # Our validators phrase each problem as "key: message" relative to the
            # model that raised; a model may report several, one per line.
            text = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
            for part in text.splitlines():
                match = _RELATIVE_KEY.match(part)
                if match:
                    key = ".".join([*loc, match.group(1)])
                    lines.append(f"{key}: {match.group(2).replace('{env}', _env_name(key))}")
                else:
                    lines.append(f"{'.'.join(loc) or '(settings)'}: {part}")
            continue
        key = ".".join(loc) or "(settings)"
        lines.append(f"{key}: {err['msg']}{_shown_input(loc, err.get('input'))}")
    return lines


def _env_name(dotted_key: str) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(dotted_key.split(".")).upper()


def _shown_input(loc: list[str], value: Any) -> str:
    # Show the offending value when it helps and cannot leak a secret.
    if loc and loc[-1] in _HIDE_INPUT_KEYS:
        return ""
    if isinstance(value, bool | int | float):
        return f" (got {value})"
    if isinstance(value, str) and len(value) <= 80:
        return f" (got {value!r})"
    return ""
