"""docs/embedding.md shows portals how to mint a token; both its examples (Python
with PyJWT, JavaScript with jose in Node) must produce a token the server
accepts, with the profile it promises. The element and iframe examples run in
tests/browser/test_portal_docs.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from presence_server.auth import TokenVerifier
from tests.conftest import make_settings
from tests.support.doc_snippets import DOCS, doc_snippet

WEB_MODULES = Path(__file__).resolve().parents[1] / "web" / "node_modules"


def lindenau_secret() -> str:
    secret = make_settings().auth.municipalities["lindenau"].secret
    assert secret is not None
    return secret.get_secret_value()


async def assert_lea(token: str) -> None:
    actor = (await TokenVerifier(make_settings().auth).verify(token)).actor
    assert (actor.user_id, actor.municipality_id, actor.display_name) == ("lea.lindenau", "lindenau", "Lea Lorenz")
    assert actor.profile.department == "Bauamt" and actor.profile.job_title is None
    assert actor.profile.skills == ("Naturschutz", "Bauleitplanung")


async def test_the_python_token_example_is_accepted_by_the_server() -> None:
    code = doc_snippet("embedding", "python-token")
    assert len(code.strip().splitlines()) <= 12  # "a ten-line example"
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOCS / "embedding.md"), "exec"), namespace)  # noqa: S102 (our own documentation)
    user = SimpleNamespace(id="lea.lindenau", display_name="Lea Lorenz", department="Bauamt", job_title=None,
                           skills=["Naturschutz", "Bauleitplanung"])
    await assert_lea(namespace["office_token"](user, lindenau_secret(), "lindenau"))  # type: ignore[operator]


async def test_the_javascript_token_example_is_accepted_by_the_server(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (WEB_MODULES / "jose").is_dir():
        pytest.fail("node and web/node_modules/jose are needed: run ./scripts/test (npm ci --prefix web)")
    # The example as a module of its own, beside a node_modules that has jose.
    (tmp_path / "node_modules").symlink_to(WEB_MODULES, target_is_directory=True)
    (tmp_path / "office-token.mjs").write_text(doc_snippet("embedding", "js-token"), encoding="utf-8")
    (tmp_path / "main.mjs").write_text(
        'import { officeToken } from "./office-token.mjs";\n'
        'const user = { id: "lea.lindenau", displayName: "Lea Lorenz", department: "Bauamt",\n'
        '               jobTitle: undefined, skills: ["Naturschutz", "Bauleitplanung"] };\n'
        "process.stdout.write(await officeToken(user, process.env.SECRET, \"lindenau\"));\n",
        encoding="utf-8",
    )
    done = subprocess.run([node, "main.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SECRET": lindenau_secret()})
    assert done.returncode == 0, done.stderr
    await assert_lea(done.stdout.strip())
