"""The README's Python SDK example runs as written, against a real server.

The code block is taken from README.md as it stands and executed unchanged, with
only what its reader supplies from outside: the server's URL and two development
tokens in the environment.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.conftest import ROOT, OfficeServer

MARKER = "<!-- Executed by tests/test_readme_sdk.py"


def readme_example() -> str:
    """The ```python block right after the marker comment in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, "README.md: the SDK example lost its marker comment"
    after = text[text.index(MARKER):]
    match = re.match(r"<!--.*?-->\s*```python\n(.*?)\n```", after, re.DOTALL)
    assert match, "README.md: no ```python block right after the marker comment"
    return match.group(1)


async def test_the_readme_calls_example_runs_as_written(
    office: OfficeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = compile(readme_example(), "README.md (Python SDK example)", "exec")
    monkeypatch.setenv("OFFICE_URL", office.url)
    monkeypatch.setenv("ANNA_TOKEN", office.token("anna.altbach", "altbach", name="Anna Albrecht"))
    monkeypatch.setenv("BEN_TOKEN", office.token("ben.bergheim", "bergheim", name="Ben Brandt"))
    # The example calls asyncio.run() as a script does: give it a thread and a loop of
    # its own while this loop serves it. Every wait inside it is bounded (5-15 s).
    await asyncio.wait_for(asyncio.to_thread(exec, code, {"__name__": "__main__"}), 90)
    expected = [
        "Anna Albrecht (altbach) ruft an",
        "Anruf: accepted",
        "Ben hört: Hallo Ben, hast du kurz Zeit?",
        "Anna hört: Klar, worum geht es?",
    ]
    # The in-process server logs to the same stdout: keep the example's own lines.
    printed = [line for line in capsys.readouterr().out.splitlines() if line in expected]
    assert printed == expected
