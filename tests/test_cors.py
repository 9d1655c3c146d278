"""Browser origins against a real server: CORS for the REST API (preflight and
headers), the per-municipality rule for authenticated requests, and the same
rule at the Socket.IO handshake, refused with a clear error."""

from __future__ import annotations

import aiohttp
import pytest
import socketio

from tests.conftest import OfficeServer, StartServer

ALTBACH_PORTAL = "https://portal.altbach.example"
SEEFELD_PORTAL = "https://intranet.seefeld.example"
SHARED = "https://kooperation.example"  # http.cors_origins: every municipality
EVIL = "https://evil.example"
OCCUPANCY = "/api/v1/floors/projekt/occupancy"


@pytest.fixture
async def office(start_server: StartServer) -> OfficeServer:
    return await start_server({
        "PRESENCE_HTTP__CORS_ORIGINS": f'["{SHARED}"]',
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__ALLOWED_ORIGINS": f'["{ALTBACH_PORTAL}"]',
        "PRESENCE_AUTH__MUNICIPALITIES__SEEFELD__ALLOWED_ORIGINS": f'["{SEEFELD_PORTAL}"]',
    })


async def preflight(office: OfficeServer, origin: str, path: str = OCCUPANCY) -> aiohttp.ClientResponse:
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization"}
    async with aiohttp.ClientSession() as http:
        async with http.options(office.url + path, headers=headers) as resp:
            await resp.read()
            return resp


@pytest.mark.parametrize("origin", [ALTBACH_PORTAL, SEEFELD_PORTAL, SHARED, "<own>"])
async def test_a_preflight_from_a_known_origin_is_answered(office: OfficeServer, origin: str) -> None:
    origin = office.url if origin == "<own>" else origin
    resp = await preflight(office, origin)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in resp.headers["Access-Control-Allow-Methods"]
    assert "Origin" in resp.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in resp.headers  # Bearer tokens, never cookies


@pytest.mark.parametrize("origin", [EVIL, "null", ALTBACH_PORTAL + ":8443", ALTBACH_PORTAL.replace("https", "http")])
async def test_a_preflight_from_an_unknown_origin_is_refused_with_the_error_shape(
    office: OfficeServer, origin: str
) -> None:
    resp = await preflight(office, origin)
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    async with aiohttp.ClientSession() as http:
        headers = {"Origin": origin, "Access-Control-Request-Method": "GET", "Accept-Language": "de"}
        async with http.options(office.url + OCCUPANCY, headers=headers) as again:
            body = await again.json()
    assert body["ok"] is False and body["error"]["code"] == "origin_not_allowed"
    assert body["error"]["message"] == "Diese Website darf das virtuelle Büro nicht verwenden."


@pytest.mark.parametrize(
    ("origin", "municipality", "status", "cors"),
    [
        (ALTBACH_PORTAL, "altbach", 200, True),
        (SHARED, "altbach", 200, True),
        (SHARED, "seefeld", 200, True),
        ("<own>", "seefeld", 200, True),
        (None, "seefeld", 200, False),  # no Origin: a server, not a browser
        (ALTBACH_PORTAL, "seefeld", 403, True),  # a known origin, but not Seefeld's: readable refusal
        (SEEFELD_PORTAL, "altbach", 403, True),
        (EVIL, "altbach", 403, False),  # unknown: refused, and the browser may not even read that
    ],
)
async def test_an_authenticated_request_must_come_from_an_origin_of_the_tokens_municipality(
    office: OfficeServer, origin: str | None, municipality: str, status: int, cors: bool
) -> None:
    origin = office.url if origin == "<own>" else origin
    headers = {} if origin is None else {"Origin": origin}
    async with office.server_session(office.token("x.user", municipality), **headers) as http:
        async with http.get(OCCUPANCY) as resp:
            body = await resp.json()
            assert resp.status == status, body
            assert ("Access-Control-Allow-Origin" in resp.headers) is cors
            assert resp.headers.get("Access-Control-Allow-Origin", origin) == origin
    if status == 403:
        assert body["error"]["code"] == "municipality_not_allowed" and "municipality" in body["error"]["message"]
    else:
        assert body["ok"] is True


async def test_writes_are_checked_the_same_way(office: OfficeServer) -> None:
    admin = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    async with office.server_session(admin, Origin=SEEFELD_PORTAL) as http:
        async with http.patch("/api/v1/rooms/altbach-teekueche", json={"door": "closed"}) as resp:
            assert resp.status == 403
    assert office.runtime.campus.room("altbach-teekueche").door.value == "open"
    async with office.server_session(admin, Origin=ALTBACH_PORTAL) as http:
        async with http.patch("/api/v1/rooms/altbach-teekueche", json={"door": "closed"}) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ALTBACH_PORTAL


async def test_unauthenticated_endpoints_answer_but_only_known_origins_get_cors_headers(office: OfficeServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(office.url + "/healthz", headers={"Origin": EVIL}) as resp:
            assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(office.url + "/openapi.json", headers={"Origin": SEEFELD_PORTAL}) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == SEEFELD_PORTAL


async def test_engine_io_keeps_answering_its_own_cors_once(office: OfficeServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(office.url + "/socket.io/?EIO=4&transport=polling",
                            headers={"Origin": ALTBACH_PORTAL}) as resp:
            assert resp.status == 200
            assert resp.headers.getall("Access-Control-Allow-Origin") == [ALTBACH_PORTAL]


async def _socket(office: OfficeServer, origin: str, municipality: str) -> tuple[bool, object]:
    sio = socketio.AsyncClient(reconnection=False)
    refused: list[object] = []
    sio.on("connect_error", lambda data: refused.append(data))
    try:
        await sio.connect(office.url, headers={"Origin": origin}, transports=["websocket"], wait_timeout=5,
                          auth={"token": office.token("x.user", municipality), "lang": "de"})
        return sio.connected, None
    except socketio.exceptions.ConnectionError as exc:
        return False, refused[0] if refused else str(exc)
    finally:
        await sio.disconnect()


async def test_a_socket_from_an_origin_not_allowed_for_the_tokens_municipality_is_refused_clearly(
    office: OfficeServer,
) -> None:
    assert await _socket(office, ALTBACH_PORTAL, "altbach") == (True, None)
    assert await _socket(office, SHARED, "seefeld") == (True, None)
    connected, refusal = await _socket(office, ALTBACH_PORTAL, "seefeld")
    assert connected is False
    assert isinstance(refusal, dict), refusal
    error = refusal.get("data", refusal)
    assert error == {"code": "municipality_not_allowed",
                     "message": "Diese Website darf das virtuelle Büro für Ihre Gemeinde nicht verwenden."}
    # An origin no municipality allows is refused before any token is read, with its own code.
    for token_town in ("altbach", "seefeld"):
        connected, refusal = await _socket(office, EVIL, token_town)
        assert connected is False
        assert isinstance(refusal, dict), refusal
        assert refusal.get("data", refusal) == {
            "code": "origin_not_allowed", "message": "Diese Website darf das virtuelle Büro nicht verwenden."}


async def test_an_embedding_page_named_by_the_client_must_be_allowed_too(office: OfficeServer) -> None:
    """The iframe page connects from the server's own origin and names its parent:
    the parent is checked like an Origin, so a refused town never gets a session."""
    async def connect(embedder: str, municipality: str) -> object:
        sio = socketio.AsyncClient(reconnection=False)
        refused: list[object] = []
        sio.on("connect_error", lambda data: refused.append(data))
        try:
            await sio.connect(office.url, headers={"Origin": office.url}, transports=["websocket"], wait_timeout=5,
                              auth={"token": office.token("x.user", municipality), "embedder": embedder})
            return "connected"
        except socketio.exceptions.ConnectionError:
            return refused[0]["data"]["code"] if refused and isinstance(refused[0], dict) else refused
        finally:
            await sio.disconnect()

    assert await connect(ALTBACH_PORTAL, "altbach") == "connected"
    assert await connect(office.url, "seefeld") == "connected"  # framed by the server's own page
    assert await connect(ALTBACH_PORTAL, "seefeld") == "municipality_not_allowed"
    assert await connect(EVIL, "altbach") == "origin_not_allowed"


async def test_long_polling_from_an_unknown_origin_is_still_refused_by_engine_io(office: OfficeServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(office.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": EVIL}) as resp:
            assert resp.status == 400
            assert "Access-Control-Allow-Origin" not in resp.headers
