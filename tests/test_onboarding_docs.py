"""The onboarding walkthroughs run as written: the README's fifth town, and the
requests of docs/onboarding.md, against a real server (tests/support/doc_snippets.py)."""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from pathlib import Path

import aiohttp

from presence_server.config import load_settings
from signalling.client import OfficeClient
from tests.conftest import DEFAULT_CONFIG, ROOT, OfficeServer
from tests.support.doc_snippets import doc_snippet, render
from tests.test_onboarding import rsa_pair, town_token

README_OFFICE = "http://127.0.0.1:8080"


async def bash(code: str, *, cwd: Path, **env: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", code, cwd=cwd, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out.decode(), err.decode())
    return out.decode()


async def dev_token(office: OfficeServer, municipality: str, user: str, name: str) -> str:
    """What the demo page does for the person it signs in."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{office.url}/dev/token",
                            params={"municipality": municipality, "user": user, "name": name}) as resp:
            assert resp.status == 200, await resp.text()
            return str((await resp.json())["token"])


async def test_the_readme_s_fifth_town_joins_the_cooperation_at_runtime(office: OfficeServer) -> None:
    code = doc_snippet("readme", "fifth-town")
    assert README_OFFICE in code
    anna = await office.client("anna.altbach", "altbach")
    await anna.watch("projekt")
    await bash(code.replace(README_OFFICE, office.url), cwd=ROOT)
    # The demo page's link for Tina: a token from /dev/token, then the project floor.
    tina = OfficeClient(office.url, await dev_token(office, "tannau", "tina.tannau", "Tina Thaler"))
    office.clients.append(tina)
    await tina.connect()
    campus = (await tina.request("campus.get"))["campus"]
    assert campus["municipality"] == {"id": "tannau", "name": "Gemeinde Tannau"}
    assert [c["id"] for c in campus["cooperations"]] == ["vier-taeler"]
    await tina.watch("projekt")
    await tina.move("projekt")
    await anna.until_view("projekt", lambda view: tina.person in view.members)


async def test_the_operators_guide_adds_a_town_and_moves_it_in_and_out(office: OfficeServer, tmp_path: Path) -> None:
    key, pem = rsa_pair()
    (tmp_path / "tannau-idp.pem").write_text(pem)
    admin = office.token("it.admin", "lindenau")
    add = render(doc_snippet("onboarding", "add-municipality"), office=office.url)
    out = json.loads(await bash(add, cwd=tmp_path, PLATFORM_TOKEN=admin))
    assert out["municipality"]["origins"] == ["https://intranet.tannau.example"]
    token = town_token(key, "tina.tannau", iss="https://idp.tannau.example", aud="virtual-office")
    tina = OfficeClient(office.url, token)
    office.clients.append(tina)
    await tina.connect()
    await bash(render(doc_snippet("onboarding", "join-cooperation"), office=office.url), cwd=tmp_path,
               PLATFORM_TOKEN=admin)
    await tina.watch("projekt")
    await bash(render(doc_snippet("onboarding", "leave-cooperation"), office=office.url), cwd=tmp_path,
               PLATFORM_TOKEN=admin)
    assert await tina.next_event("floor.revoked", timeout=5) == {"floor_id": "projekt", "reason": "membership"}


def test_the_operators_guide_config_is_valid() -> None:
    listed = tomllib.loads(doc_snippet("onboarding", "platform-admins"))["auth"]["platform_admins"]
    settings = load_settings(DEFAULT_CONFIG, env={"PRESENCE_AUTH__PLATFORM_ADMINS": json.dumps(listed)})
    assert settings.auth.platform_admins == listed
