"""What an operator and an admin see: expiry of project rooms, metrics, health, docs."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OfficeServer

FLOOR = "projekt"


async def test_a_project_room_is_removed_at_its_expiry_and_its_occupants_stand_in_the_hallway(
    office: OfficeServer,
) -> None:
    watcher = await office.client("ben.bergheim", "bergheim")
    view = await watcher.watch(FLOOR)
    admin = office.token("lea.lindenau", "lindenau", roles=("staff", "admin"))
    body = {"name": "Workshop", "kind": "project", "expires_at": time.time() + 1.0,
            "rect": {"x": 700, "y": 360, "w": 250, "h": 200}}
    async with office.server_session(admin) as http:
        async with http.post(f"/api/v1/floors/{FLOOR}/rooms", json=body) as resp:
            assert resp.status == 201
            room_id = (await resp.json())["room"]["id"]
    guest = await office.client("sven.seefeld", "seefeld")
    await guest.move(FLOOR, room_id)
    await watcher.until_view(FLOOR, lambda v: v.members.get("seefeld/sven.seefeld", {}).get("room_id") == room_id)
    await watcher.until_view(FLOOR, lambda v: room_id not in v.rooms, timeout=5)
    assert view.members["seefeld/sven.seefeld"]["room_id"] is None
    assert office.runtime.campus.room(room_id) is None


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_metrics_show_sessions_users_events_knocks_and_broadcast_latency(office: OfficeServer) -> None:
    async with office.server_session() as http:
        async with http.get("/metrics") as resp:
            before = scrape(await resp.text())
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, "projekt-besprechung")
    ben = await office.client("ben.bergheim", "bergheim")
    await office.client("ben.bergheim", "bergheim")  # a second tab: one user
    knock = await ben.knock("projekt-besprechung")
    await lea.answer(knock["knock_id"], admit=False)
    await ben.next_event("knock.outcome")
    async with office.server_session() as http:
        async with http.get("/metrics") as resp:
            assert resp.status == 200
            after = scrape(await resp.text())

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("vo_sessions") == 3
    assert delta("vo_online_users", municipality="bergheim") == 1
    assert delta("vo_online_users", municipality="lindenau") == 1
    assert delta("vo_events_in_total", event="knock.send") == 1
    assert delta("vo_knocks_total", outcome="declined") == 1
    assert delta("vo_events_out_total", type="joined") >= 1
    assert delta("vo_change_to_broadcast_seconds_count") >= 1


async def test_health_readiness_and_the_openapi_document(office: OfficeServer) -> None:
    async with office.server_session() as http:
        async with http.get("/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with http.get("/readyz") as resp:
            assert resp.status == 200 and (await resp.json())["ready"] is True
        async with http.get("/openapi.json") as resp:
            doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/floors", "/api/v1/rooms/{room_id}"} <= set(doc["paths"])
    assert "RoomCreate" in doc["components"]["schemas"]


async def test_dev_tokens_exist_only_in_development_mode(start_server) -> None:
    dev = await start_server()
    prod_like = await start_server({"PRESENCE_DEV_MODE": "false"})
    query = "/dev/token?municipality=altbach&user=anna.altbach&name=Anna"
    async with dev.server_session() as http:
        async with http.get(query) as resp:
            token = (await resp.json())["token"]
    actor = (await dev.runtime.verifier.verify(token)).actor
    assert (actor.user_id, actor.person_id) == ("anna.altbach", "altbach/anna.altbach")
    async with prod_like.server_session() as http:
        async with http.get(query) as resp:
            assert resp.status == 404


async def test_the_demo_page_its_widget_and_the_npm_socketio_client_are_served(office: OfficeServer) -> None:
    async with office.server_session() as http:
        async with http.get("/") as resp:
            assert resp.status == 200
            page = await resp.text()
        assert '<script type="module" src="/static/demo.js">' in page
        async with http.get("/static/demo.js") as resp:
            assert resp.status == 200
            # The page is built on the embeddable element, which brings the socket client.
            assert 'import "/widget/virtual-office-floor.js";' in await resp.text()
        async with http.get("/widget/virtual-office-floor.js") as resp:
            assert resp.status == 200
        async with http.get("/widget/vendor/socket.io.esm.min.js") as resp:
            # Installed from npm by scripts/serve and scripts/test, never committed.
            assert resp.status == 200, "run: npm ci --prefix web"
            assert "io" in await resp.text()
