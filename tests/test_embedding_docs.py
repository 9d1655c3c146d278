"""docs/embedding.md shows portals how to mint a token; its Python example must
produce a token the server accepts, with the profile it promises."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from presence_server.auth import TokenVerifier
from tests.conftest import make_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"


def example(marker: str, language: str) -> str:
    match = re.search(rf"<!-- example: {marker} -->\n```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match is not None, f"{marker} example missing from {DOC}"
    return match.group(1)


async def test_the_python_token_example_is_accepted_by_the_server() -> None:
    code = example("python-token", "python")
    assert len(code.strip().splitlines()) <= 12  # "a ten-line example"
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    settings = make_settings()
    secret = settings.auth.municipalities["lindenau"].secret
    assert secret is not None
    user = SimpleNamespace(id="lea.lindenau", display_name="Lea Lorenz", department="Bauamt", job_title=None,
                           skills=["Naturschutz", "Bauleitplanung"])
    token = namespace["office_token"](user, secret.get_secret_value(), "lindenau")  # type: ignore[operator]
    identity = await TokenVerifier(settings.auth).verify(token)
    actor = identity.actor
    assert (actor.user_id, actor.municipality_id, actor.display_name) == ("lea.lindenau", "lindenau", "Lea Lorenz")
    assert actor.profile.department == "Bauamt" and actor.profile.job_title is None
    assert actor.profile.skills == ("Naturschutz", "Bauleitplanung")
