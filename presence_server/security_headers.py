"""Browser security headers, added in one place to every response the server sends.

One ``on_response_prepare`` hook rather than headers in each handler: it also
reaches responses no handler of ours builds — static files, aiohttp's own
error pages, Engine.IO's answers — and a page added later cannot forget them.

* ``X-Content-Type-Options: nosniff`` on **every** response: a browser must
  take JSON as JSON and a script as a script, never guess that an error body or
  an upload "looks like" HTML or JavaScript.
* On **documents** (HTML, XHTML, SVG — the types a browser renders and runs
  scripts in):

  - ``Content-Security-Policy`` :data:`PAGE_POLICY` unless the handler set its
    own (the embed page lists who may frame it; the badge SVG allows its inline
    style). Scripts only from the server's own files — no inline script, no
    ``eval`` — so an injected ``<script>`` or ``onclick`` does nothing.
    ``frame-ancestors 'none'`` (and the older ``X-Frame-Options: DENY``): pages
    that are not meant to be embedded cannot be framed for clickjacking.
  - ``Referrer-Policy: no-referrer``: the server reads no ``Referer``, and page
    URLs may carry user names (the demo page's query) that other sites need not see.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

__all__ = ["install", "PAGE_POLICY", "REFERRER_POLICY", "DOCUMENT_TYPES"]

#: The policy of every document whose handler sets none (the demo page, error pages).
PAGE_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",  # the Socket.IO connection (CSP 3: 'self' covers ws/wss of the same host)
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",  # the demo's forms are handled by script, never submitted
        "frame-ancestors 'none'",
    ]
)
REFERRER_POLICY: Final = "no-referrer"
#: Content types a browser renders as a document (SVG can carry scripts too).
DOCUMENT_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml"})


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type not in DOCUMENT_TYPES:
        return
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = PAGE_POLICY
        # For browsers without frame-ancestors. Only here: it cannot express the embed
        # page's list of portals, and a DENY there would block them in those browsers.
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", REFERRER_POLICY)


def install(app: web.Application) -> None:
    """Add the headers to every response of ``app`` (before it is frozen)."""
    app.on_response_prepare.append(_add_headers)
