"""A presence badge as a small SVG image, for intranet pages that render
server-side: a coloured dot *and* the status in words (status is never told by
colour alone), German or English.

Every text is escaped; the response also carries a restrictive CSP, so the
image cannot run script even when opened on its own.
"""

from __future__ import annotations

from typing import Any, Final
from xml.sax.saxutils import escape

__all__ = ["render_badge", "STATUS_LABELS", "SVG_HEADERS"]

#: status -> (English, German)
STATUS_LABELS: Final[dict[str, tuple[str, str]]] = {
    "available": ("available", "verfügbar"),
    "busy": ("busy", "beschäftigt"),
    "away": ("away", "abwesend"),
    "do_not_disturb": ("do not disturb", "bitte nicht stören"),
    "offline": ("offline", "offline"),
}
_IN_CALL: Final = ("in a call", "im Gespräch")
_UNKNOWN: Final = ("unknown", "unbekannt")
_COLOURS: Final[dict[str, str]] = {
    "available": "#2e7d32",
    "busy": "#c62828",
    "away": "#f9a825",
    "do_not_disturb": "#6a1b9a",
    "offline": "#757575",
}
_MAX_CHARS: Final = 90

SVG_HEADERS: Final = {
    "Content-Type": "image/svg+xml; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Vary": "Accept-Language, Authorization",
}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "de" else pair[0]


def badge_text(card: dict[str, Any] | None, lang: str) -> str:
    """The one line the badge shows (also its accessible name)."""
    if card is None:
        return _pick(_UNKNOWN, lang)
    status = card["status"]
    parts = [f"{card['name']}: {_pick(STATUS_LABELS.get(status, _UNKNOWN), lang)}"]
    if card.get("status_text"):
        parts[0] += f" – {card['status_text']}"
    if card.get("in_call"):
        parts.append(_pick(_IN_CALL, lang))
    where = card.get("room_name") or card.get("floor_name")
    if where:
        parts.append(where)
    text = " · ".join(parts)
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def render_badge(card: dict[str, Any] | None, lang: str) -> str:
    """An SVG for ``card`` (a badge as the JSON endpoint returns it), or the
    neutral "unknown" badge for ``None``."""
    text = badge_text(card, lang)
    colour = _COLOURS.get(card["status"] if card else "offline", _COLOURS["offline"])
    width = 30 + int(len(text) * 6.6)
    label = escape(text, {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="22" viewBox="0 0 {width} 22" '
        f'role="img" aria-label="{label}" lang="{lang}">'
        f"<title>{escape(text)}</title>"
        f'<rect width="{width}" height="22" rx="11" fill="#ffffff" stroke="#bdbdbd"/>'
        f'<circle cx="12" cy="11" r="5" fill="{colour}"/>'
        f'<text x="23" y="15" font-family="sans-serif" font-size="12" fill="#212121">{escape(text)}</text>'
        "</svg>"
    )
