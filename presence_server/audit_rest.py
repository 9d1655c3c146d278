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
coordinators read its entries (changes to the project, its members, its
invitations, its floor's rooms and doors, admissions into them) the same way at
``GET /api/v1/projects/{id}/audit``; members who are not coordinators get
``forbidden``, everyone else ``not_found``.
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
from rooms import access
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
    return await _answer(request, {"municipality": actor.municipality_id})


async def get_project_audit(request: web.Request) -> web.StreamResponse:
    actor = (await authenticate(request)).actor
    rt = request.app[RUNTIME]
    project = rt.campus.visible_project(actor, request.match_info["project_id"])  # not_found for non-members
    if not access.is_coordinator(actor, project):
        raise DomainError(ErrorCode.FORBIDDEN, "only coordinators read the project's audit trail")
    return await _answer(request, {"project": project.id})


async def _answer(request: web.Request, whose: dict[str, str]) -> web.StreamResponse:
    query = _params(request)
    audit = request.app[RUNTIME].audit
    jsonl = query.format == "jsonl" or (query.format is None and NDJSON in request.headers.get("Accept", ""))
    scope: dict[str, Any] = {**whose, "since": query.since, "until": query.until, "after": query.after}
    log.info("audit_read", format="jsonl" if jsonl else "json", limit=query.limit, **whose)
    if not jsonl:
        entries = [entry async for entry in audit.stream(limit=query.limit, **scope)]
        next_after = entries[-1].id if len(entries) == query.limit else None
        return web.json_response(
            {"ok": True, "entries": [e.to_dict() for e in entries], "next_after": next_after}, headers=_NO_STORE
        )
    return await _export(request, audit, query.limit, scope)


async def _export(request: web.Request, audit: AuditLog, limit: int, scope: dict[str, Any]) -> web.StreamResponse:
    stream = audit.stream(limit=limit, **scope)
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
    app.router.add_get("/api/v1/projects/{project_id}/audit", get_project_audit)
