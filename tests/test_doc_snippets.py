"""The documentation's code examples are run by tests, all of them.

docs/embedding.md and docs/portal.md show portals what to write, docs/projects.md
what projects are (its picture is checked against the access rules). Every fenced
block there carries an ``<!-- example: name -->`` marker, and some test reads
each marker with ``doc_snippet("<doc>", "<name>")`` and runs the code (browser
tests: tests/browser/test_portal_docs.py; tokens: tests/test_embedding_docs.py;
portal API and webhooks: tests/test_portal_doc_examples.py). This test keeps it
that way: a new block without a marker, or a marker no test reads, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.doc_snippets import code_blocks, markers

TESTS = Path(__file__).resolve().parent
DOCS_RUN = ("embedding", "portal", "projects")
_CALL = re.compile(r"""doc_snippet\(\s*["']([a-z]+)["']\s*,\s*["']([a-z0-9-]+)["']\s*\)""")


def read_by_tests() -> set[tuple[str, str]]:
    return {m for path in TESTS.rglob("*.py") for m in _CALL.findall(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("doc", DOCS_RUN)
def test_every_code_block_is_a_marked_example(doc: str) -> None:
    marked = {code for _, code in markers(doc).values()}
    unmarked = [code[:80] for _, code in code_blocks(doc) if code not in marked]
    assert unmarked == [], f"docs/{doc}.md: code blocks without '<!-- example: name -->': {unmarked}"


@pytest.mark.parametrize("doc", DOCS_RUN)
def test_every_example_is_run_by_a_test(doc: str) -> None:
    read = {name for d, name in read_by_tests() if d == doc}
    assert set(markers(doc)) - read == set(), f"docs/{doc}.md: examples no test runs"
    assert read - set(markers(doc)) == set(), f"tests read examples docs/{doc}.md does not have"
