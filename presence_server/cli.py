"""The ``presence-server`` command.

``run``           start the server (blocks until shutdown)
``check-config``  validate a config file, exit 0 or 2
``token``         mint a development token (only when dev_mode is true)

Exit codes: 0 success, 2 unusable configuration or refused request (also used by
argparse for bad arguments), so scripts can tell "wrong input" from a crash.
Configuration problems are printed without a traceback.

The config file is, in order: ``--config``, the ``PRESENCE_CONFIG`` environment
variable, ``config/default.toml`` if it exists in the working directory, or none
(built-in defaults plus ``PRESENCE_*`` variables).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from presence_server import __version__
from presence_server.config import ConfigError, Settings, load_settings

__all__ = ["main", "build_parser", "resolve_config_path", "DEFAULT_CONFIG", "CONFIG_ENV_VAR"]

DEFAULT_CONFIG: Final = Path("config/default.toml")
CONFIG_ENV_VAR: Final = "PRESENCE_CONFIG"
EXIT_OK: Final = 0
EXIT_USAGE: Final = 2


def resolve_config_path(explicit: str | None) -> Path | None:
    """The config file to load (see the module docstring), or ``None`` for none."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="presence-server",
        description="Virtual office presence server for cooperating municipalities.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="start the server")
    run.add_argument("--config", metavar="FILE", help=f"config file (default: ${CONFIG_ENV_VAR} or {DEFAULT_CONFIG})")
    run.add_argument("--host", help="listen address (overrides http.host)")
    run.add_argument("--port", type=int, help="listen port (overrides http.port)")

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file", metavar="FILE")

    token = commands.add_parser("token", help="mint a development token (dev_mode only)")
    token.add_argument("--config", metavar="FILE", help=f"config file (default: ${CONFIG_ENV_VAR} or {DEFAULT_CONFIG})")
    token.add_argument("--municipality", required=True, help="municipality id, e.g. altbach")
    token.add_argument("--user", required=True, help="user id (sub claim)")
    token.add_argument("--name", required=True, help="display name")
    token.add_argument(
        "--role",
        dest="roles",
        action="append",
        choices=["staff", "admin", "guest"],
        help="role; repeat for several (default: staff)",
    )
    token.add_argument("--ttl", type=int, metavar="SECONDS", help="lifetime (default: auth.dev_token_ttl_seconds)")
    token.add_argument("--department")
    token.add_argument("--job-title")
    token.add_argument("--skill", dest="skills", action="append", default=[], help="skill; repeat for several")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, bad arguments
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    handler = {"run": _cmd_run, "check-config": _cmd_check_config, "token": _cmd_token}[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_USAGE


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    http: dict[str, Any] = {}
    if args.host is not None:
        http["host"] = args.host
    if args.port is not None:
        http["port"] = args.port
    path = resolve_config_path(args.config)
    # A dict merges with the file and env values key by key, and is validated like
    # them (so --port 70000 is reported as http.port).
    settings = load_settings(path, **({"http": http} if http else {}))

    from presence_server.logging_setup import configure_logging

    configure_logging(settings.log.level, settings.log.format)
    import structlog

    structlog.get_logger(__name__).info(
        "server.starting",
        config=str(path) if path else None,
        host=settings.http.host,
        port=settings.http.port,
        dev_mode=settings.dev_mode,
    )
    # Imported late: the app pulls in aiohttp and Socket.IO, which check-config and
    # token do not need.
    from presence_server.app import run_server

    run_server(settings)
    return EXIT_OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    # Building the verifier reads and parses key files and PEM keys, which plain
    # validation does not (JWKS endpoints are not contacted).
    from presence_server.auth import TokenVerifier

    TokenVerifier(settings.auth)
    print(f"OK: {args.file}")
    print(_summary(settings))
    return EXIT_OK


def _summary(settings: Settings) -> str:
    munis = settings.auth.municipalities
    listed = ", ".join(f"{mid} ({conf.algorithm})" for mid, conf in sorted(munis.items())) or "none"
    storage: str = settings.storage.backend
    if storage == "sqlite":
        storage += f" ({settings.storage.sqlite_path})"
    lines = [
        f"  municipalities: {listed}",
        f"  storage: {storage}",
        f"  http: {settings.http.host}:{settings.http.port}",
        f"  metrics: {_metrics_summary(settings)}",
        f"  dev_mode: {str(settings.dev_mode).lower()}",
    ]
    if settings.dev_mode:
        lines.append("  warning: dev_mode is on - tokens can be minted without a login; never use it in production")
    elif settings.metrics.port is None and settings.metrics.token is None:
        lines.append("  warning: /metrics is open to anyone who reaches http.port; set metrics.port or metrics.token")
    return "\n".join(lines)


def _metrics_summary(settings: Settings) -> str:
    conf = settings.metrics
    where = f"{conf.listen_host}:{conf.port} (own listener)" if conf.port is not None else "on http.port"
    return where + (", bearer token required" if conf.token is not None else ", no token")


def _cmd_token(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    settings = load_settings(path)
    if not settings.dev_mode:
        where = str(path) if path else "the built-in defaults"
        _err(
            f"Refusing to mint a token: dev_mode is false ({where}).\n"
            "Tokens come from the municipality's identity provider; `token` is for development only."
        )
        return EXIT_USAGE

    from presence_server.auth import mint_token

    try:
        token = mint_token(
            settings.auth,
            municipality=args.municipality,
            user_id=args.user,
            name=args.name,
            roles=args.roles or ["staff"],
            ttl_seconds=args.ttl if args.ttl is not None else settings.auth.dev_token_ttl_seconds,
            department=args.department,
            job_title=args.job_title,
            skills=args.skills,
        )
    except ValueError as exc:
        _err(f"Cannot mint a token: {exc}")
        return EXIT_USAGE
    print(token)
    return EXIT_OK
