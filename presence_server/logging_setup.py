"""Logging: structlog for our code, with the standard library routed through it.

One handler on the root logger renders every record - ours and those of aiohttp,
python-socketio and engineio - the same way: one JSON object per line in
production, coloured key=value lines in development. Request-scoped context is
bound with :func:`structlog.contextvars.bind_contextvars` (``sid``, ``user``,
``municipality``) and appears on every line logged while it is bound, including
lines from libraries.

Usage::

    log = structlog.get_logger(__name__)
    log.info("knock.sent", room=room_id)
"""

from __future__ import annotations

import logging
import sys
from typing import Final, Literal

import structlog
from structlog.typing import Processor

__all__ = ["configure_logging", "LIBRARY_LOGGERS"]

#: Chatty libraries: they log every request/packet at INFO. Kept at WARNING or above.
LIBRARY_LOGGERS: Final = ("aiohttp", "aiohttp.access", "socketio", "engineio", "socketio.server", "engineio.server")

_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
#: Marks our handler so a second call replaces it instead of adding another.
_HANDLER_MARK: Final = "_presence_server_handler"


def configure_logging(level: str, fmt: Literal["console", "json"]) -> None:
    """Configure structlog and the standard library. Idempotent; a later call wins.

    ``level`` is one of ``debug``/``info``/``warning``/``error`` (any case).
    Output goes to stderr, so stdout stays clean for command output (tokens).
    """
    try:
        numeric = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}") from None
    if fmt not in ("console", "json"):
        raise ValueError(f"unknown log format {fmt!r}; use 'console' or 'json'")

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        final: list[Processor] = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # ConsoleRenderer formats exceptions itself (with the traceback pretty-printed).
        final = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]

    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from stdlib loggers get the same enrichment as structlog's own.
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))

    # The structlog chain is the same on every call; rendering lives in the handler's
    # formatter and levels in the stdlib loggers, so loggers cached on first use
    # still follow a later reconfiguration.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
