"""The audit trail over HTTP: ``GET /api/v1/audit`` for a municipality's admins.

An admin reads the entries whose scopes include their own municipality
(changes to its floors and rooms, to the floors and rooms of every cooperation
it belongs to, and admissions into those rooms), oldest first::

    GET /api/v1/audit?since=<unix s>&until=<unix s>&after=<entry id>&limit=<1..10000>

* JSON (default): ``{"ok": true, "entries": [...], "next_after": id | null}``;
  ``next_after`` is set when ``limit`` entries came back: pass it as ``after``
  for the next page.
* JSON lines (``Accept: application/x-ndjson`` or ``?format=jsonl``): one
  entry per line, streamed; fewer than ``limit`` lines means the range is done,
  otherwise continue with ``after`` = the last line's ``id``.

Staff without the admin role and guests get ``forbidden``. A project's
coordinators will read theirs through
:meth:`~presence_server.audit.service.AuditLog.for_project`.
"""

from __future__ import annotations

import json
from typing import Any, Final

import structlog
from aiohttp import web
from pydantic import ValidationError

from presence_server.audit.service import AuditLog
from presence_server.audit_models import MAX_LIMIT, NDJSON, AuditQueryParams
from presence_server.messages import validation_error
from presence_server.rest import authenticate
from presence_server.runtime import RUNTIME
from rooms.audit import AuditEntry
from rooms.errors import DomainError, ErrorCode, StoreUnavailable

__all__ = ["install", "AuditQueryParams", "NDJSON", "MAX_LIMIT"]

log = structlog.get_logger(__name__)

_NO_STORE: Final = {"Cache-Control": "no-store"}


def _params(request: web.Request) -> AuditQueryParams:
    try:
        return AuditQueryParams.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from None


def _line(entry: AuditEntry) -> bytes:
    return json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


async def get_audit(request: web.Request) -> web.StreamResponse:
    actor = (await authenticate(request)).actor
    if not actor.is_admin:  # is_admin is never true for a guest
        raise DomainError(ErrorCode.FORBIDDEN, "only admins read the audit trail")
    query = _params(request)
    audit = request.app[RUNTIME].audit
    jsonl = query.format == "jsonl" or (query.format is None and NDJSON in request.headers.get("Accept", ""))
    scope: dict[str, Any] = {"since": query.since, "until": query.until, "after": query.after}
    log.info("audit_read", format="jsonl" if jsonl else "json", limit=query.limit)
    if not jsonl:
        entries = await audit.for_municipality(actor.municipality_id, limit=query.limit, **scope)
        next_after = entries[-1].id if len(entries) == query.limit else None
        return web.json_response(
            {"ok": True, "entries": [e.to_dict() for e in entries], "next_after": next_after}, headers=_NO_STORE
        )
    return await _export(request, audit, actor.municipality_id, query.limit, scope)


async def _export(
    request: web.Request, audit: AuditLog, municipality: str, limit: int, scope: dict[str, Any]
) -> web.StreamResponse:
    stream = audit.stream(municipality=municipality, limit=limit, **scope)
    # The first page before the headers: an outage then still answers 503 with the error shape.
    first = await anext(stream, None)
    response = web.StreamResponse(headers={"Content-Type": f"{NDJSON}; charset=utf-8", **_NO_STORE})
    await response.prepare(request)
    if first is not None:
        await response.write(_line(first))
        try:
            async for entry in stream:
                await response.write(_line(entry))
        except StoreUnavailable as exc:
            # The status is sent: a clean end would pass a cut export off as complete.
            # Abort the connection instead, so the client's read fails (no final chunk).
            log.warning("audit_export_cut", error=str(exc))
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response


def install(app: web.Application) -> None:
    """Add the audit route to an app built by :func:`presence_server.app.build_app`."""
    app.router.add_get("/api/v1/audit", get_audit)
