"""Municipalities and cooperations added at runtime by platform admins, on one node.

A real server (in-process, loopback), real HTTP requests, real Socket.IO clients.
Tokens of a town added at runtime are signed as its identity provider would sign
them (an RSA key pair made here, or an HS256 secret in development mode).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from presence_server.auth import mint_token
from signalling.client import ConnectRefused, OfficeClient, RequestError
from tests.conftest import OfficeServer, StartServer

PLATFORM = "/api/v1/platform"
ADMIN = ("it.admin", "lindenau")  # auth.platform_admins in config/default.toml
TANNAU_PORTAL = "https://intranet.tannau.example"
SECRET = "dev-only-tannau-secret-change-me-00000"


def rsa_pair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def town_token(key: Any, user: str, municipality: str = "tannau", *, algorithm: str = "RS256",
               roles: tuple[str, ...] = ("staff",), **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": user, "name": user.split(".")[0].title(), "municipality": municipality,
               "roles": list(roles), "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


async def api(office: OfficeServer, method: str, path: str, token: str | None, body: Any = None,
              **headers: str) -> tuple[int, dict[str, Any]]:
    async with office.server_session(token, **headers) as http:
        async with http.request(method, path, json=body) as resp:
            return resp.status, await resp.json()


async def tannau_client(office: OfficeServer, user: str) -> OfficeClient:
    """A Tannau staff member, signed with the HS256 secret Tannau was added with."""
    conf = office.runtime.verifier.auth_for("tannau")
    token = mint_token(office.settings.auth, municipality="tannau", user_id=user, name="Tina", conf=conf)
    client = OfficeClient(office.url, token)
    office.clients.append(client)
    return await client.connect()


def admin_token(office: OfficeServer) -> str:
    return office.token(*ADMIN, name="IT Admin")


def tannau_hs256(**extra: Any) -> dict[str, Any]:
    return {"id": "tannau", "name": "Gemeinde Tannau", "auth": {"algorithm": "HS256", "secret": SECRET},
            "origins": [], **extra}


async def test_a_platform_admin_adds_a_town_whose_rs256_tokens_connect_at_once(office: OfficeServer) -> None:
    key, pem = rsa_pair()
    refused = OfficeClient(office.url, town_token(key, "tina.tannau"))
    with pytest.raises(ConnectRefused):
        await refused.connect()
    body = {"id": "tannau", "name": "Gemeinde Tannau", "origins": [TANNAU_PORTAL],
            "auth": {"algorithm": "RS256", "key": pem, "issuer": "https://idp.tannau.example"}}
    status, answer = await api(office, "POST", f"{PLATFORM}/municipalities", admin_token(office), body)
    assert status == 201, answer
    view = answer["municipality"]
    assert view["id"] == "tannau" and view["name"] == "Gemeinde Tannau" and view["source"] == "runtime"
    assert view["origins"] == [TANNAU_PORTAL] and len(view["auth"]["key_sha256"]) == 64
    assert "BEGIN PUBLIC KEY" not in str(answer)

    token = town_token(key, "tina.tannau", iss="https://idp.tannau.example")
    client = OfficeClient(office.url, token)
    office.clients.append(client)
    await client.connect()
    campus = (await client.request("campus.get"))["campus"]
    assert campus["municipality"] == {"id": "tannau", "name": "Gemeinde Tannau"}
    # Its own floor is not there yet, and it is in no cooperation: it sees no floor.
    assert campus["floors"] == [] and campus["cooperations"] == []
    # The issuer is pinned as given; a token without it is refused.
    with pytest.raises(ConnectRefused):
        await OfficeClient(office.url, town_token(key, "tina.tannau")).connect()
    # Its portal may now use the API and the socket, for Tannau's staff only.
    status, _ = await api(office, "GET", "/api/v1/campus", token, Origin=TANNAU_PORTAL)
    assert status == 200
    status, refusal = await api(office, "GET", "/api/v1/campus", office.token("anna.altbach", "altbach"),
                                Origin=TANNAU_PORTAL)
    assert (status, refusal["error"]["code"]) == (403, "municipality_not_allowed")
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(office.url, headers={"Origin": TANNAU_PORTAL}, transports=["websocket"], wait_timeout=5,
                          auth={"token": token})
        assert sio.connected
    finally:
        await sio.disconnect()


async def test_only_platform_admins_may_and_guests_never(office: OfficeServer) -> None:
    town_admin = office.token("lea.lindenau", "lindenau", roles=("staff", "admin"))
    guest_admin = office.token("it.admin", "lindenau", roles=("guest",))
    namesake = office.token("it.admin", "altbach", roles=("staff", "admin"))  # same user id, another town
    for token in (town_admin, guest_admin, namesake):
        for method, path, body in [("GET", f"{PLATFORM}/municipalities", None),
                                   ("POST", f"{PLATFORM}/municipalities", tannau_hs256()),
                                   ("POST", f"{PLATFORM}/cooperations/vier-taeler/members", {"municipality": "altbach"}),
                                   ("DELETE", f"{PLATFORM}/cooperations/vier-taeler/members/altbach", None)]:
            status, answer = await api(office, method, path, token, body)
            assert (status, answer["error"]["code"]) == (403, "forbidden"), (method, path, answer)
    status, answer = await api(office, "GET", f"{PLATFORM}/municipalities", None)
    assert (status, answer["error"]["code"]) == (401, "unauthenticated")
    assert "tannau" not in office.runtime.campus.municipalities
    assert office.runtime.campus.cooperations["vier-taeler"].members == ("altbach", "bergheim", "lindenau", "seefeld")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (tannau_hs256(id="Tannau"), "id"),
        (tannau_hs256(name=""), "name"),
        (tannau_hs256(origins=["https://x.example/path"]), "origins"),
        (tannau_hs256(auth={"algorithm": "RS256"}), "auth"),
        (tannau_hs256(auth={"algorithm": "RS256", "key": "not a key"}), "auth.key"),
        (tannau_hs256(auth={"algorithm": "HS256", "secret": SECRET, "key": "x"}), "auth"),
        (tannau_hs256(auth={"algorithm": "RS256", "jwks_url": "ftp://idp.example/keys"}), "auth.jwks_url"),
        (tannau_hs256(auth={"algorithm": "ES256", "secret": SECRET}), "auth.algorithm"),
        (tannau_hs256(extra=1), "extra"),
    ],
)
async def test_bad_municipalities_are_refused_naming_the_field(office: OfficeServer, body: dict[str, Any],
                                                              field: str) -> None:
    status, answer = await api(office, "POST", f"{PLATFORM}/municipalities", admin_token(office), body)
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "invalid_payload", field), answer
    assert "tannau" not in office.runtime.campus.municipalities


async def test_configured_and_existing_ids_conflict_and_secrets_are_never_shown(
    office: OfficeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    token = admin_token(office)
    status, answer = await api(office, "POST", f"{PLATFORM}/municipalities", token, tannau_hs256(id="altbach"))
    assert (status, answer["error"]["code"]) == (409, "conflict")
    assert office.runtime.campus.municipalities["altbach"].name == "Gemeinde Altbach"
    status, answer = await api(office, "PATCH", f"{PLATFORM}/municipalities/altbach", token, {"name": "X"})
    assert (status, answer["error"]["code"]) == (409, "conflict")
    status, answer = await api(office, "POST", f"{PLATFORM}/municipalities", token, tannau_hs256())
    assert status == 201 and answer["municipality"]["auth"] == {
        "algorithm": "HS256", "issuer": None, "audience": None, "secret_set": True}
    status, answer = await api(office, "POST", f"{PLATFORM}/municipalities", token, tannau_hs256())
    assert (status, answer["error"]["code"]) == (409, "conflict")
    status, answer = await api(office, "GET", f"{PLATFORM}/municipalities", token)
    assert status == 200
    listed = {m["id"]: m for m in answer["municipalities"]}
    assert set(listed) == {"altbach", "bergheim", "lindenau", "seefeld", "tannau"}
    assert listed["altbach"]["source"] == "config" and listed["tannau"]["source"] == "runtime"
    assert SECRET not in str(answer) and "dev-only-altbach" not in str(answer)
    status, answer = await api(office, "PATCH", f"{PLATFORM}/municipalities/nowhere", token, {"name": "X"})
    assert (status, answer["error"]["code"]) == (404, "not_found")
    logged = capsys.readouterr().out  # the server's structured log (it logs to stdout here)
    assert "platform_change" in logged and "municipality.added" in logged
    assert SECRET not in logged


async def test_a_shared_secret_is_refused_outside_development_mode(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_DEV_MODE": "false",
                                 **{f"PRESENCE_AUTH__MUNICIPALITIES__{t.upper()}__SECRET": "x" * 40
                                    for t in ("altbach", "bergheim", "lindenau", "seefeld")}})
    status, answer = await api(office, "POST", f"{PLATFORM}/municipalities", admin_token(office),
                               tannau_hs256(auth={"algorithm": "HS256", "secret": "y" * 40}))
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "invalid_payload", "auth.secret")


async def frame_ancestors(office: OfficeServer, floor_id: str) -> str:
    async with office.server_session() as http:
        async with http.get(f"/embed/floors/{floor_id}") as resp:
            policy = resp.headers["Content-Security-Policy"]
    return next(part for part in policy.split("; ") if part.startswith("frame-ancestors"))


async def test_a_new_town_joins_the_cooperation_and_its_staff_see_the_shared_floor(office: OfficeServer) -> None:
    token = admin_token(office)
    body = tannau_hs256(origins=[TANNAU_PORTAL])
    assert (await api(office, "POST", f"{PLATFORM}/municipalities", token, body))[0] == 201
    assert TANNAU_PORTAL not in await frame_ancestors(office, "projekt")
    tina = await tannau_client(office, "tina.tannau")
    with pytest.raises(RequestError) as refused:
        await tina.watch("projekt")
    assert refused.value.code == "not_found"
    status, answer = await api(office, "POST", f"{PLATFORM}/cooperations/vier-taeler/members", token,
                               {"municipality": "tannau"})
    assert status == 200 and answer["cooperation"]["members"][-1] == "tannau"
    view = await tina.watch("projekt")
    assert "projekt-raum-digitales-rathaus" in view.rooms
    assert TANNAU_PORTAL in await frame_ancestors(office, "projekt")  # its portal may embed the floor now
    anna = await office.client("anna.altbach", "altbach")
    await anna.watch("projekt")
    await tina.move("projekt", "projekt-raum-digitales-rathaus")
    await anna.until_view("projekt", lambda v: tina.person in v.occupants("projekt-raum-digitales-rathaus"))
    # Unknown members and cooperations are refused.
    status, answer = await api(office, "POST", f"{PLATFORM}/cooperations/vier-taeler/members", token,
                               {"municipality": "nowhere"})
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "invalid_payload", "members")
    status, answer = await api(office, "PUT", f"{PLATFORM}/cooperations/nowhere/members", token, {"members": []})
    assert (status, answer["error"]["code"]) == (404, "not_found")
    # The audit trail: Altbach's admin (a member town) reads the joining; the walk is not there.
    altbach_admin = office.token("admin.altbach", "altbach", roles=("staff", "admin"))
    status, answer = await api(office, "GET", "/api/v1/audit", altbach_admin)
    actions = [(e["action"], e["actor"], e["target"]) for e in answer["entries"]]
    assert ("cooperation.member_added", "lindenau/it.admin", {"cooperation": "vier-taeler"}) in actions
    assert all(not a.startswith(("presence.", "move")) for a, _, _ in actions)
    lindenau_admin = office.token("admin.lindenau", "lindenau", roles=("staff", "admin"))  # the platform admin's town
    status, answer = await api(office, "GET", "/api/v1/audit", lindenau_admin)
    added = [e for e in answer["entries"] if e["action"] == "municipality.added"]
    assert [e["target"] for e in added] == [{"municipality": "tannau"}]
    assert SECRET not in repr(added)


async def test_a_new_cooperation_s_floor_is_seen_by_its_members_only(office: OfficeServer) -> None:
    token = admin_token(office)
    assert (await api(office, "POST", f"{PLATFORM}/municipalities", token, tannau_hs256()))[0] == 201
    status, answer = await api(office, "POST", f"{PLATFORM}/cooperations", token,
                               {"id": "zwei-ufer", "name": "Zweckverband Zwei Ufer", "members": ["altbach", "tannau"]})
    assert status == 201 and answer["cooperation"] == {
        "id": "zwei-ufer", "name": "Zweckverband Zwei Ufer", "members": ["altbach", "tannau"]}
    status, answer = await api(office, "POST", f"{PLATFORM}/cooperations", token,
                               {"id": "zwei-ufer", "name": "Again", "members": []})
    assert (status, answer["error"]["code"]) == (409, "conflict")
    anna_admin = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    status, answer = await api(office, "POST", "/api/v1/floors", anna_admin,
                               {"id": "ufer", "name": "Ufer-Etage", "owner_kind": "cooperation", "owner_id": "zwei-ufer"})
    assert status == 201, answer
    tina = await tannau_client(office, "tina.tannau")
    floors = [f["id"] for f in (await tina.request("campus.get"))["campus"]["floors"]]
    assert floors == ["ufer"]
    await tina.watch("ufer")
    ben = await office.client("ben.bergheim", "bergheim")
    with pytest.raises(RequestError) as refused:
        await ben.watch("ufer")
    assert refused.value.code == "not_found"


async def test_leaving_a_cooperation_ends_the_watch_with_floor_revoked(office: OfficeServer) -> None:
    token = admin_token(office)
    assert (await api(office, "POST", f"{PLATFORM}/municipalities", token, tannau_hs256()))[0] == 201
    assert (await api(office, "POST", f"{PLATFORM}/cooperations/vier-taeler/members", token,
                      {"municipality": "tannau"}))[0] == 200
    tina = await tannau_client(office, "tina.tannau")
    anna = await office.client("anna.altbach", "altbach")
    await tina.watch("projekt")
    await anna.watch("projekt")
    await tina.move("projekt", "projekt-lounge")
    await anna.until_view("projekt", lambda v: tina.person in v.occupants("projekt-lounge"))
    status, answer = await api(office, "DELETE", f"{PLATFORM}/cooperations/vier-taeler/members/tannau", token)
    assert status == 200 and "tannau" not in answer["cooperation"]["members"]
    revoked = await tina.next_event("floor.revoked", timeout=5)
    assert revoked == {"floor_id": "projekt", "reason": "membership"}
    # She no longer stands on a floor she cannot see, and the others see her gone.
    await anna.until_view("projekt", lambda v: tina.person not in v.members)
    assert (await tina.request("campus.get"))["campus"]["floors"] == []
    with pytest.raises(RequestError) as refused:
        await tina.watch("projekt")
    assert refused.value.code == "not_found"
    # Anna, still a member, was not told anything of the kind.
    assert anna.pending_events("floor.revoked") == []


async def test_a_deleted_floor_ends_its_watches_with_floor_revoked(office: OfficeServer) -> None:
    anna_admin = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.watch("projekt")
    status, _ = await api(office, "DELETE", "/api/v1/floors/projekt", anna_admin)
    assert status == 200
    assert await ben.next_event("floor.revoked", timeout=5) == {"floor_id": "projekt", "reason": "deleted"}


async def test_a_runtime_town_survives_a_restart_on_sqlite(start_server: StartServer, tmp_path: Path) -> None:
    env = {"PRESENCE_STORAGE__BACKEND": "sqlite", "PRESENCE_STORAGE__SQLITE_PATH": str(tmp_path / "campus.sqlite3")}
    key, pem = rsa_pair()
    first = await start_server(env)
    body = {"id": "tannau", "name": "Gemeinde Tannau", "auth": {"algorithm": "RS256", "key": pem}}
    assert (await api(first, "POST", f"{PLATFORM}/municipalities", admin_token(first), body))[0] == 201
    assert (await api(first, "PUT", f"{PLATFORM}/cooperations/vier-taeler/members", admin_token(first),
                      {"members": ["altbach", "tannau"]}))[0] == 200
    await first.server.close()
    second = await start_server(env)
    tina = OfficeClient(second.url, town_token(key, "tina.tannau"))
    second.clients.append(tina)
    await tina.connect()
    await tina.watch("projekt")
    assert second.runtime.campus.cooperations["vier-taeler"].members == ("altbach", "tannau")


async def test_a_dev_token_is_minted_for_a_runtime_hs256_town(office: OfficeServer) -> None:
    assert (await api(office, "POST", f"{PLATFORM}/municipalities", admin_token(office), tannau_hs256()))[0] == 201
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{office.url}/dev/token",
                            params={"municipality": "tannau", "user": "tina.tannau", "name": "Tina"}) as resp:
            token = (await resp.json())["token"]
    client = OfficeClient(office.url, token)
    office.clients.append(client)
    await client.connect()
    assert client.person == "tannau/tina.tannau"


def test_platform_admins_must_be_people_of_configured_towns() -> None:
    from presence_server.config import ConfigError, load_settings
    from tests.conftest import DEFAULT_CONFIG

    for listed, problem in [('["tannau/it.admin"]', "belongs to no municipality configured"),
                            ('["it.admin"]', "is not a person id")]:
        with pytest.raises(ConfigError) as refused:
            load_settings(DEFAULT_CONFIG, env={"PRESENCE_AUTH__PLATFORM_ADMINS": listed})
        assert any(p.startswith("auth.platform_admins:") and problem in p for p in refused.value.problems), refused.value


def test_the_protocol_documents_floor_revoked_with_both_reasons() -> None:
    from tests.test_protocol_doc import section

    events = section(4)
    assert "| `floor.revoked` |" in events and "{floor_id, reason}" in events
    assert "| `membership` |" in events and "| `deleted` |" in events


async def test_a_rotated_key_and_new_origins_apply_at_once(office: OfficeServer) -> None:
    token = admin_token(office)
    old_key, old_pem = rsa_pair()
    new_key, new_pem = rsa_pair()
    body = {"id": "tannau", "name": "Gemeinde Tannau", "auth": {"algorithm": "RS256", "key": old_pem}}
    assert (await api(office, "POST", f"{PLATFORM}/municipalities", token, body))[0] == 201
    old_token, new_token = town_token(old_key, "tina.tannau"), town_token(new_key, "tina.tannau")
    assert (await api(office, "GET", "/api/v1/campus", old_token))[0] == 200
    assert (await api(office, "GET", "/api/v1/campus", old_token, Origin=TANNAU_PORTAL))[0] == 403
    status, answer = await api(office, "PATCH", f"{PLATFORM}/municipalities/tannau", token,
                               {"name": "Stadt Tannau", "auth": {"algorithm": "RS256", "key": new_pem},
                                "origins": [TANNAU_PORTAL]})
    assert status == 200 and answer["municipality"]["name"] == "Stadt Tannau"
    assert answer["municipality"]["origins"] == [TANNAU_PORTAL]
    status, refusal = await api(office, "GET", "/api/v1/campus", old_token)
    assert (status, refusal["error"]["code"]) == (401, "unauthenticated")
    status, campus = await api(office, "GET", "/api/v1/campus", new_token, Origin=TANNAU_PORTAL)
    assert status == 200 and campus["campus"]["municipality"] == {"id": "tannau", "name": "Stadt Tannau"}
    # Origins alone: the key stays.
    status, answer = await api(office, "PATCH", f"{PLATFORM}/municipalities/tannau", token, {"origins": []})
    assert status == 200 and answer["municipality"]["auth"]["key_sha256"]
    assert (await api(office, "GET", "/api/v1/campus", new_token))[0] == 200
    assert (await api(office, "GET", "/api/v1/campus", new_token, Origin=TANNAU_PORTAL))[0] == 403


async def test_the_openapi_document_lists_the_platform_endpoints(office: OfficeServer) -> None:
    status, doc = await api(office, "GET", "/openapi.json", None)
    assert status == 200
    paths = {p: set(ops) - {"parameters"} for p, ops in doc["paths"].items() if p.startswith(PLATFORM)}
    routes = {(r.method.lower(), r.resource.canonical) for r in office.server.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith(PLATFORM) and r.method != "HEAD"}
    assert {(m, p) for p, ops in paths.items() for m in ops} == routes
    assert {"MunicipalityCreate", "AuthIn", "MembersPut"} <= set(doc["components"]["schemas"])
