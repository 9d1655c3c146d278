"""docs/portal.md's examples against a real server: the JSON answers it shows
have the shape the server answers (the same keys, at every level), the webhook
configuration it shows loads, and its request body, signature header and both
verify functions (Python, and JavaScript in Node) hold for a real delivery."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from presence_server.config import load_settings
from tests.conftest import DEFAULT_CONFIG, OfficeServer, StartServer
from tests.support.doc_snippets import DOCS, doc_snippet
from tests.support.portal import get, person
from tests.support.webhook_receiver import Receiver

SECRET = b"altbach-webhook-secret-0123456789abcdef"


def shape_mismatches(doc: Any, real: Any, path: str = "$") -> list[str]:
    """Where the documented JSON and the real answer differ in shape: keys of objects
    (at every level), lists against lists (an empty one fits any), objects against
    objects; scalars and null fit each other (values are examples)."""
    if isinstance(doc, dict) or isinstance(real, dict):
        if not (isinstance(doc, dict) and isinstance(real, dict)):
            return [f"{path}: object in only one of them"]
        problems = [f"{path}: keys {sorted(set(doc) ^ set(real))} in only one of them"] if set(doc) != set(real) else []
        for key in set(doc) & set(real):
            problems += shape_mismatches(doc[key], real[key], f"{path}.{key}")
        return problems
    if isinstance(doc, list) or isinstance(real, list):
        if not (isinstance(doc, list) and isinstance(real, list)):
            return [f"{path}: list in only one of them"]
        return [p for d in doc for r in real[:1] for p in shape_mismatches(d, r, f"{path}[]")]
    return []


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = await Receiver({"altbach": SECRET}).start()
    yield rec
    await rec.stop()


@pytest.fixture
async def office(start_server: StartServer, receiver: Receiver) -> OfficeServer:
    hook = "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__"
    return await start_server({
        hook + "URL": receiver.url("altbach"), hook + "SECRET": SECRET.decode(), hook + "ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000", "PRESENCE_LIMITS__BURST": "1000",
    })


async def test_the_documented_answers_have_the_servers_shape(office: OfficeServer) -> None:
    anna = await person(office, "anna.altbach", "altbach", name="Anna Albrecht")
    ben = await person(office, "ben.bergheim", "bergheim", name="Ben Berger", department="Kämmerei")
    clara = await person(office, "clara.bergheim", "bergheim", name="Clara Conrad", department="Umweltamt",
                         job_title="Sachbearbeiterin", skills=["Naturschutzrecht"])
    await anna.move("projekt", "projekt-lounge")
    await ben.move("projekt")
    await ben.set_status("busy", "Haushaltsplan")
    await clara.move("projekt")
    token = office.token("anna.altbach", "altbach")
    for documented, path in (
        (doc_snippet("portal", "occupancy-response"), "/api/v1/floors/projekt/occupancy"),
        (doc_snippet("portal", "badge-response"), "/api/v1/municipalities/bergheim/users/ben.bergheim/badge"),
        (doc_snippet("portal", "finder-response"), "/api/v1/people/search?skill=naturschutz"),
    ):
        status, real = await get(office, token, path)
        assert status == 200, real
        assert shape_mismatches(json.loads(documented), real) == [], path


def test_the_documented_webhook_configuration_loads(tmp_path: Path) -> None:
    config = tmp_path / "with-webhook.toml"
    config.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8") + "\n" + doc_snippet("portal", "webhook-config"),
                      encoding="utf-8")
    secret_env = {"PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET": SECRET.decode()}
    hook = load_settings(config, env=secret_env).auth.municipalities["altbach"].webhooks["intranet"]
    documented = tomllib.loads(doc_snippet("portal", "webhook-config"))["auth"]["municipalities"]["altbach"]
    assert hook.url == documented["webhooks"]["intranet"]["url"]
    assert sorted(hook.events) == sorted(documented["webhooks"]["intranet"]["events"])


async def test_a_real_delivery_matches_the_documented_body_header_and_verify_functions(
    office: OfficeServer, receiver: Receiver, tmp_path: Path
) -> None:
    ben = await person(office, "ben.bergheim", "bergheim", name="Ben Berger")
    await ben.move("projekt")
    await ben.set_status("busy", "Haushaltsplan")
    deliveries = await receiver.until(lambda ds: any(d.event["type"] == "presence.status" for d in ds))
    delivery = next(d for d in deliveries if d.event["type"] == "presence.status")
    assert shape_mismatches(json.loads(doc_snippet("portal", "webhook-body")), delivery.event) == []

    # The header, in the documented form.
    header = delivery.headers["X-VO-Signature"]
    form = doc_snippet("portal", "signature-header").strip()
    name, _, value = form.partition(": ")
    assert name == "X-VO-Signature" and value.startswith("t=<unix seconds>,v1=<hex HMAC-SHA256(")
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)

    # The Python receiver of the docs accepts it, and nothing else.
    namespace: dict[str, Any] = {}
    exec(compile(doc_snippet("portal", "verify-python"), str(DOCS / "portal.md"), "exec"), namespace)  # noqa: S102
    verify = namespace["verify"]
    assert verify(SECRET, header, delivery.body) is True
    assert verify(b"another-secret-0123456789abcdef0123", header, delivery.body) is False
    assert verify(SECRET, header, delivery.body.replace(b"busy", b"away")) is False

    # So does the JavaScript one, in Node.
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed: ./scripts/test installs it with npm")
    (tmp_path / "verify.cjs").write_text(
        doc_snippet("portal", "verify-js")
        + "\nconst [secret, header, body] = process.argv.slice(2);\n"
        "const results = [verify(secret, header, Buffer.from(body, 'base64')),\n"
        "                 verify('another-secret', header, Buffer.from(body, 'base64'))];\n"
        "process.stdout.write(JSON.stringify(results));\n",
        encoding="utf-8",
    )
    import base64

    done = subprocess.run(
        [node, "verify.cjs", SECRET.decode(), header, base64.b64encode(delivery.body).decode()],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, False]
