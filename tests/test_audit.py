"""The audit trail end to end on one real server: admin writes over REST and knock
admissions are recorded, admins read their municipality's entries over REST (JSON
and JSON lines), nobody else reads them, and movements, status changes and
declined knocks leave no entry."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import OfficeServer
from tests.support.portal import eventually

ALTBACH_FLOOR = "altbach-eg"
FLOOR, MEETING = "projekt", "projekt-besprechung"  # the cooperation floor; a closed room owned by lea
ADA = "altbach/ada.altbach"
RECT = {"x": 500, "y": 300, "w": 100, "h": 100}


def admin(office: OfficeServer, municipality: str = "altbach", user: str | None = None) -> str:
    return office.token(user or f"ada.{municipality}", municipality, roles=("staff", "admin"))


async def read(office: OfficeServer, token: str, **params: Any) -> list[dict[str, Any]]:
    async with office.server_session(token) as http:
        async with http.get("/api/v1/audit", params={k: str(v) for k, v in params.items()}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            assert resp.headers["Cache-Control"] == "no-store"
            return list(body["entries"])


async def refusal(office: OfficeServer, token: str | None, **params: Any) -> tuple[int, str]:
    async with office.server_session(token) as http:
        async with http.get("/api/v1/audit", params={k: str(v) for k, v in params.items()}) as resp:
            return resp.status, (await resp.json())["error"]["code"]


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> dict[str, Any]:
    async with http.request(method, path, json=body) as resp:
        answer: dict[str, Any] = await resp.json()
        assert resp.status in (200, 201), answer
        return answer


async def test_an_admins_room_create_door_change_update_and_delete_are_readable_over_rest(office: OfficeServer) -> None:
    since = time.time()
    async with office.server_session(admin(office)) as http:
        room = (await call(http, "POST", f"/api/v1/floors/{ALTBACH_FLOOR}/rooms",
                           {"name": "Prüfraum", "kind": "meeting", "rect": RECT}))["room"]["id"]
        await call(http, "PATCH", f"/api/v1/rooms/{room}", {"door": "closed"})
        await call(http, "PATCH", f"/api/v1/rooms/{room}", {"name": "Prüfraum 2", "capacity": 3})
        await call(http, "PATCH", f"/api/v1/rooms/{room}", {"capacity": 3})  # no change: no entry
        await call(http, "DELETE", f"/api/v1/rooms/{room}")
    entries = await read(office, admin(office, user="otto.altbach"), since=since)
    assert [e["action"] for e in entries] == ["room.created", "door.changed", "room.updated", "room.deleted"]
    for e in entries:
        assert e["actor"] == ADA and e["actor_municipality"] == "altbach"
        assert e["target"] == {"room": room, "floor": ALTBACH_FLOOR}
        assert e["scopes"] == ["altbach"] and e["project"] is None
        assert since <= e["at"] <= time.time()
    created, door, updated, deleted = (e["change"] for e in entries)
    assert created["name"] == {"new": "Prüfraum"} and created["door"] == {"new": "open"}
    assert created["rect"] == {"new": RECT}
    assert door == {"door": {"old": "open", "new": "closed"}}
    assert updated == {"name": {"old": "Prüfraum", "new": "Prüfraum 2"}, "capacity": {"old": 8, "new": 3}}
    assert deleted == {"name": {"old": "Prüfraum 2"}}


async def test_floor_writes_are_recorded(office: OfficeServer) -> None:
    since = time.time()
    async with office.server_session(admin(office)) as http:
        floor = (await call(http, "POST", "/api/v1/floors",
                            {"name": "Dachgeschoss", "owner_kind": "municipality", "owner_id": "altbach"}))["floor"]["id"]
        await call(http, "PATCH", f"/api/v1/floors/{floor}", {"position": 7})
        await call(http, "DELETE", f"/api/v1/floors/{floor}")
    entries = await read(office, admin(office), since=since)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("floor.created", {"floor": floor}), ("floor.updated", {"floor": floor}), ("floor.deleted", {"floor": floor})
    ]
    assert entries[1]["change"] == {"position": {"old": 0, "new": 7}}


async def test_jsonl_export_is_one_parsable_entry_per_line_and_pages_with_after(office: OfficeServer) -> None:
    since = time.time()
    async with office.server_session(admin(office)) as http:
        room = (await call(http, "POST", f"/api/v1/floors/{ALTBACH_FLOOR}/rooms",
                           {"name": "Export", "kind": "meeting", "rect": RECT}))["room"]["id"]
        for door in ("closed", "locked", "open"):
            await call(http, "PATCH", f"/api/v1/rooms/{room}", {"door": door})
    as_json = await read(office, admin(office), since=since)
    assert len(as_json) == 4
    async with office.server_session(admin(office), Accept="application/x-ndjson") as http:
        async with http.get("/api/v1/audit", params={"since": str(since)}) as resp:
            assert resp.status == 200 and resp.content_type == "application/x-ndjson"
            text = await resp.text()
    assert text.endswith("\n")
    assert [json.loads(line) for line in text.splitlines()] == as_json
    async with office.server_session(admin(office)) as http:
        async with http.get("/api/v1/audit", params={"since": str(since), "format": "jsonl", "limit": "3"}) as resp:
            first = [json.loads(line) for line in (await resp.text()).splitlines()]
        async with http.get("/api/v1/audit", params={"since": str(since), "format": "jsonl",
                                                     "after": first[-1]["id"]}) as resp:
            rest = [json.loads(line) for line in (await resp.text()).splitlines()]
        async with http.get("/api/v1/audit", params={"since": str(since), "limit": "3"}) as resp:
            assert (await resp.json())["next_after"] == first[-1]["id"]
    assert first + rest == as_json and len(first) == 3


async def test_another_towns_admin_reads_shared_floor_entries_but_never_a_towns_own(office: OfficeServer) -> None:
    since = time.time()
    async with office.server_session(admin(office)) as http:
        own = (await call(http, "POST", f"/api/v1/floors/{ALTBACH_FLOOR}/rooms",
                          {"name": "Nur Altbach", "kind": "office", "rect": RECT}))["room"]["id"]
        shared = (await call(http, "POST", f"/api/v1/floors/{FLOOR}/rooms",
                             {"name": "Gemeinsam", "kind": "meeting", "rect": RECT}))["room"]["id"]
    bergheim = await read(office, admin(office, "bergheim"), since=since)
    assert [e["target"]["room"] for e in bergheim] == [shared]
    assert bergheim[0]["scopes"] == ["altbach", "bergheim", "lindenau", "seefeld"]
    assert [e["target"]["room"] for e in await read(office, admin(office), since=since)] == [own, shared]


async def test_staff_guests_and_anonymous_callers_are_refused(office: OfficeServer) -> None:
    assert await refusal(office, office.token("anna.altbach", "altbach")) == (403, "forbidden")
    assert await refusal(office, office.token("gast.altbach", "altbach", roles=("guest",))) == (403, "forbidden")
    assert await refusal(office, office.token("gast.altbach", "altbach", roles=("guest", "admin"))) == (403, "forbidden")
    assert await refusal(office, None) == (401, "unauthenticated")


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "10001"}, {"since": "-1"}, {"since": "5", "until": "4"},
                                    {"after": "not-an-id"}, {"format": "xml"}, {"unknown": "1"}])
async def test_bad_parameters_are_refused_with_invalid_payload(office: OfficeServer, params: dict[str, str]) -> None:
    assert await refusal(office, admin(office), **params) == (400, "invalid_payload")


async def test_movements_and_status_changes_leave_no_entry(office: OfficeServer) -> None:
    since = time.time()
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(ALTBACH_FLOOR)
    await anna.move(ALTBACH_FLOOR, "altbach-buero-anna")
    await anna.set_status("busy", "Haushalt")
    await anna.move(FLOOR, "projekt-lounge")
    await anna.leave()
    # A recorded act after all of them: the trail is written in order, so anything
    # the moves had recorded would come before it.
    async with office.server_session(admin(office)) as http:
        await call(http, "PATCH", "/api/v1/rooms/altbach-buero-anna", {"door": "closed"})
    entries = await read(office, admin(office), since=since)
    assert [e["action"] for e in entries] == ["door.changed"]
    assert all(e["actor"] != "altbach/anna.altbach" for e in entries)


async def test_a_knock_admission_is_one_entry_and_a_decline_none(office: OfficeServer) -> None:
    since = time.time()
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    tim = await office.client("tim.bergheim", "bergheim")
    await tim.move(FLOOR)
    declined = await tim.knock(MEETING)
    await lea.answer(declined["knock_id"], admit=False)
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.move(FLOOR)
    knock = await ben.knock(MEETING, "Kurze Frage")
    await lea.answer(knock["knock_id"], admit=True)
    entries = await read(office, admin(office, "lindenau"), since=since)
    assert [e["action"] for e in entries] == ["knock.admitted"]
    [admitted] = entries
    assert admitted["actor"] == "lindenau/lea.lindenau" and admitted["actor_municipality"] == "lindenau"
    assert admitted["target"] == {"room": MEETING, "floor": FLOOR, "person": "bergheim/ben.bergheim",
                                  "knock": knock["knock_id"]}
    assert admitted["change"] == {}  # no knock message, no status: who let whom in where
    # Bergheim's admins read it too: the shared floor belongs to their cooperation.
    assert [e["id"] for e in await read(office, admin(office, "bergheim"), since=since)] == [admitted["id"]]


async def test_an_expired_room_is_recorded_as_the_systems_act(office: OfficeServer) -> None:
    since = time.time()
    async with office.server_session(admin(office)) as http:
        room = (await call(http, "POST", f"/api/v1/floors/{ALTBACH_FLOOR}/rooms",
                           {"name": "Kurz", "kind": "project", "rect": RECT, "expires_at": time.time() + 0.5}))["room"]["id"]

    async def expired() -> list[dict[str, Any]]:
        return [e for e in await read(office, admin(office), since=since) if e["action"] == "room.expired"]

    [entry] = await eventually(expired, timeout=10)
    assert entry["actor"] is None and entry["actor_municipality"] is None
    assert entry["target"] == {"room": room, "floor": ALTBACH_FLOOR} and entry["scopes"] == ["altbach"]


async def test_the_metric_counts_entries_by_action(office: OfficeServer) -> None:
    from presence_server.metrics import REGISTRY

    before = REGISTRY.get_sample_value("vo_audit_entries_total", {"action": "door.changed"}) or 0.0
    async with office.server_session(admin(office)) as http:
        await call(http, "PATCH", "/api/v1/rooms/altbach-buero-anna", {"door": "locked"})
    assert REGISTRY.get_sample_value("vo_audit_entries_total", {"action": "door.changed"}) == before + 1
    async with aiohttp.ClientSession() as http:
        async with http.get(office.url + "/metrics") as resp:
            assert 'vo_audit_entries_total{action="door.changed"}' in await resp.text()


async def test_on_the_embedded_default_the_trail_is_a_sqlite_file_of_its_own_and_survives_a_restart(
    start_server: Any, tmp_path: Any
) -> None:
    env = {"PRESENCE_STORAGE__BACKEND": "sqlite", "PRESENCE_STORAGE__SQLITE_PATH": str(tmp_path / "campus.sqlite3")}
    first = await start_server(env)
    since = time.time()
    async with first.server_session(admin(first)) as http:
        await call(http, "PATCH", "/api/v1/rooms/altbach-buero-anna", {"door": "locked"})
    await first.server.close()
    assert (tmp_path / "audit.sqlite3").is_file()  # audit.sqlite_path's default: beside the campus file
    second = await start_server(env)
    assert [e["action"] for e in await read(second, admin(second), since=since)] == ["door.changed"]


async def test_the_openapi_document_describes_the_audit_endpoint(office: OfficeServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(office.url + "/openapi.json") as resp:
            doc = await resp.json()
    get = doc["paths"]["/api/v1/audit"]["get"]
    assert {p["name"] for p in get["parameters"]} == {"since", "until", "after", "limit", "format"}
    assert set(get["responses"]["200"]["content"]) == {"application/json", "application/x-ndjson"}
    assert "403" in get["responses"] and "AuditEntryModel" in doc["components"]["schemas"]


async def test_an_export_cut_by_an_outage_fails_for_the_client_instead_of_looking_complete(
    office: OfficeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import presence_server.audit.service as service
    from rooms.errors import StoreUnavailable

    monkeypatch.setattr(service, "PAGE", 2)
    since = time.time()
    async with office.server_session(admin(office)) as http:
        for door in ("closed", "open", "closed", "open", "closed"):
            await call(http, "PATCH", "/api/v1/rooms/altbach-buero-anna", {"door": door})
    store = office.runtime.audit.store
    real, calls = store.query, [0]

    async def failing_on_the_second_page(query: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            raise StoreUnavailable("injected: redis away")
        return await real(query)

    monkeypatch.setattr(store, "query", failing_on_the_second_page)
    async with office.server_session(admin(office)) as http:
        async with http.get("/api/v1/audit", params={"since": str(since), "format": "jsonl"}) as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
async def test_an_outage_before_the_first_entry_answers_unavailable(
    office: OfficeServer, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from rooms.errors import StoreUnavailable

    async def away(query: Any) -> Any:
        raise StoreUnavailable("injected: redis away")

    monkeypatch.setattr(office.runtime.audit.store, "query", away)
    assert await refusal(office, admin(office), format=fmt) == (503, "unavailable")


async def test_a_room_owner_changing_the_door_is_recorded_as_themselves(office: OfficeServer) -> None:
    since = time.time()
    async with office.server_session(office.token("lea.lindenau", "lindenau")) as http:  # staff, owner of MEETING
        await call(http, "PATCH", f"/api/v1/rooms/{MEETING}", {"door": "locked"})
    [entry] = await read(office, admin(office, "seefeld"), since=since)
    assert (entry["action"], entry["actor"], entry["change"]) == (
        "door.changed", "lindenau/lea.lindenau", {"door": {"old": "closed", "new": "locked"}}
    )
