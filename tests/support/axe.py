"""axe-core (npm, ``web/node_modules``) in a browser page: WCAG 2.1 AA checks of
what the page shows, open shadow roots included.

* A page without a Content-Security-Policy (a portal page of the tests) gets axe
  when :func:`axe_violations` first runs in it.
* A page whose policy refuses inline scripts (the demo page: ``script-src
  'self'``) would refuse that too: call :func:`install_axe` on its context before
  opening it. The browser injects init scripts outside the page's policy, so the
  policy stays in force for everything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page

__all__ = ["AXE", "install_axe", "axe_violations", "severe"]

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
_RUN = """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary })) }))"""


def _source() -> str:
    if not AXE.is_file():
        import pytest

        pytest.fail(f"{AXE} missing: run ./scripts/test (npm ci --prefix web)")
    return AXE.read_text(encoding="utf-8")


def install_axe(context: BrowserContext) -> None:
    """Make axe available in every page ``context`` opens from now on, whatever their policy."""
    context.add_init_script(script=_source())


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; the violations with their impact and where they are."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=_source())
    violations: list[dict[str, Any]] = page.evaluate(_RUN)
    return violations


def severe(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The serious and critical ones: what the tests refuse."""
    return [v for v in violations if v["impact"] in ("serious", "critical")]
