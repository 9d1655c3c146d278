"""Settings for who may read ``/metrics``: the ``metrics`` section.

Metrics tell more than an operator may want the internet to know (how many
people of which municipality are online, error rates, cluster state), so
production protects them in one or both of two ways:

* ``port`` (and ``host``): ``/metrics`` moves to a listener of its own — an
  interface only the monitoring network reaches — and is no longer served on
  ``http.port``;
* ``token``: every scrape must send ``Authorization: Bearer <token>`` (set it
  from the environment: ``PRESENCE_METRICS__TOKEN``).

Neither set (the development default): open on the main port, as before.
Kept apart from :mod:`presence_server.config` like the portal settings; the
checks that need other sections (``http.port``, ``dev_mode``) are in
:func:`metrics_problems`, which :class:`~presence_server.config.Settings` calls.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["MetricsSettings", "metrics_problems", "DEFAULT_METRICS_HOST"]

#: Where a metrics listener binds unless ``metrics.host`` says otherwise: nothing
#: but this machine reaches it until the operator names an interface.
DEFAULT_METRICS_HOST: Final = "127.0.0.1"


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Serve /metrics on this port instead of http.port (0: any free port, for tests).
    port: int | None = Field(default=None, ge=0, le=65535)
    #: Interface of that listener (default 127.0.0.1); only with ``port``.
    host: str | None = None
    #: Bearer token every scrape must send. Outside dev mode at least 32 bytes.
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetricsSettings:
        # Messages start with the key they are about; ConfigError prefixes "metrics.".
        problems: list[str] = []
        if self.host is not None and self.port is None:
            problems.append("host: only used with metrics.port (set both to serve /metrics on a listener of its own)")
        if self.host is not None and not self.host.strip():
            problems.append("host: must not be empty")
        if self.token is not None and not self.token.get_secret_value():
            problems.append("token: must not be empty (leave it unset to serve metrics without a token)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def listen_host(self) -> str:
        return self.host or DEFAULT_METRICS_HOST

    @property
    def token_bytes(self) -> bytes | None:
        return self.token.get_secret_value().encode() if self.token is not None else None


def metrics_problems(metrics: MetricsSettings, *, http_port: int, dev_mode: bool, min_token_bytes: int) -> list[str]:
    """What is wrong with ``metrics`` given the rest of the settings, as
    ``"metrics.<key>: message"`` lines (``{env}`` is replaced by the variable's name)."""
    problems: list[str] = []
    if metrics.port is not None and metrics.port != 0 and metrics.port == http_port:
        problems.append(f"metrics.port: must differ from http.port ({http_port}); it is a second listener")
    token = metrics.token_bytes
    if not dev_mode and token and len(token) < min_token_bytes:
        problems.append(
            f"metrics.token: must be at least {min_token_bytes} bytes when dev_mode is false"
            " (set it in the environment variable {env})"
        )
    return problems
