"""Code examples read out of the documentation, so tests run exactly what the docs show.

A runnable example in ``docs/*.md`` (or in ``README.md``: doc ``"readme"``) is a
fenced block right after a marker line::

    <!-- example: element-refresh -->
    ```html
    ...
    ```

:func:`doc_snippet` returns its code. Tests call it with string literals
(``doc_snippet("embedding", "element")``): ``tests/test_doc_snippets.py`` scans the
tests for those calls and fails when a document has a code block no test runs, or
a marker no test reads. Placeholders are the docs' own: the office at
``https://office.example.org`` and a token rendered by the portal's template,
``{{ office_token }}``; :func:`render` fills them in as a portal would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

__all__ = ["DOCS", "OFFICE_PLACEHOLDER", "TOKEN_PLACEHOLDER", "doc_snippet", "markers", "code_blocks", "render"]

DOCS: Final = Path(__file__).resolve().parents[2] / "docs"
OFFICE_PLACEHOLDER: Final = "https://office.example.org"
TOKEN_PLACEHOLDER: Final = "{{ office_token }}"
_MARKED: Final = re.compile(r"<!-- example: ([a-z0-9-]+) -->\n```([a-z]*)\n(.*?)```", re.S)
_FENCE: Final = re.compile(r"^```([a-z]*)\n(.*?)^```", re.S | re.M)


def _text(doc: str) -> str:
    if doc == "readme":  # the README's walkthrough, at the repository's root
        return (DOCS.parent / "README.md").read_text(encoding="utf-8")
    return (DOCS / f"{doc}.md").read_text(encoding="utf-8")


def markers(doc: str) -> dict[str, tuple[str, str]]:
    """``{name: (language, code)}`` of every marked example in ``docs/<doc>.md``."""
    found: dict[str, tuple[str, str]] = {}
    for name, language, code in _MARKED.findall(_text(doc)):
        assert name not in found, f"example {name!r} twice in {doc}.md"
        found[name] = (language, code)
    return found


def code_blocks(doc: str) -> list[tuple[str, str]]:
    """Every fenced block of ``docs/<doc>.md`` as ``(language, code)``."""
    return [(language, code) for language, code in _FENCE.findall(_text(doc))]


def doc_snippet(doc: str, name: str) -> str:
    """The code of example ``name`` in ``docs/<doc>.md``."""
    found = markers(doc)
    assert name in found, f"no '<!-- example: {name} -->' in docs/{doc}.md"
    return found[name][1]


def render(code: str, *, office: str, token: str | None = None) -> str:
    """Fill in the docs' placeholders as a portal would: its office's address, and
    (where the template has one) the token its backend minted, escaped for the
    JavaScript string or attribute it stands in."""
    code = code.replace(OFFICE_PLACEHOLDER, office)
    if token is not None:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", token), "a JWT needs no escaping"
        code = code.replace(TOKEN_PLACEHOLDER, token)
    assert TOKEN_PLACEHOLDER not in code, "a template placeholder left unfilled"
    return code


def js_string(value: str) -> str:
    return json.dumps(value)
