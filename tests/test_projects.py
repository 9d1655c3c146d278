"""Projects across organisations (docs/projects.md), with real clients.

Every test runs against one server process and against two server processes
sharing one real Redis (clients spread over both nodes). The project of most
tests: whole Altbach and Bergheim, one named person of Lindenau, and nobody of
Seefeld — though all four towns share the cooperation "vier-taeler", so what
keeps Seefeld and the rest of Lindenau out is the project, nothing else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from signalling.client import OfficeClient, RequestError
from tests.support.office import NODE_KINDS, Office, start_nodes, unique
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.slow

POLICY = {
    # Seefeld lets only admins create projects; Lindenau allows at most 30 days.
    "PRESENCE_AUTH__MUNICIPALITIES__SEEFELD__PROJECTS__CREATORS": "admin",
    "PRESENCE_AUTH__MUNICIPALITIES__LINDENAU__PROJECTS__MAX_DAYS": "30",
}


@pytest.fixture(scope="module", params=NODE_KINDS)
def nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    with start_nodes(request, tmp_path_factory, logs="project-logs", prefix="p", extra=POLICY) as started:
        yield started


@pytest.fixture
async def office(nodes: list[ServerProcess]) -> AsyncIterator[Office]:
    async with Office(nodes) as office:
        yield office


async def create(office: Office, client: OfficeClient, **fields: Any) -> dict[str, Any]:
    """Create a project through ``client`` and wait until every node knows it (the
    others hear of it over the bus a moment later)."""
    body = {"name": "Digitales Bauamt", "purpose": "Bauanträge online", "template": "project_office", **fields}
    made = await client.request("project.create", body)
    creator = office.token(client.me["user_id"], client.me["municipality"])
    await office.until_known_everywhere(f"/api/v1/projects/{made['project']['id']}", creator)
    return made


def floor_ids(campus: dict[str, Any]) -> set[str]:
    return {f["id"] for f in campus["floors"]}


async def test_exactly_the_members_see_the_project_everywhere(office: Office) -> None:
    named = unique("lena")
    anna = await office.client(0, unique("anna"), "altbach")
    made = await create(office, anna, members={"municipalities": ["altbach", "bergheim"], "persons": [f"lindenau/{named}"]})
    project, floor = made["project"], made["floor"]
    assert project["coordinators"] == [anna.person] and project["floor_id"] == floor["id"]
    assert floor["owner_kind"] == "project" and [r["kind"] for r in floor["rooms"]] == ["project", "meeting"]
    office_room = floor["rooms"][0]["id"]

    ben = await office.client(1, unique("ben"), "bergheim")  # through his town
    skill = f"Bauordnung-{uuid.uuid4().hex[:4]}"
    lena = await office.client(1, named, "lindenau", skills=[skill])  # named in person
    lars = await office.client(0, unique("lars"), "lindenau")  # same town as Lena, not named
    sven = await office.client(1, unique("sven"), "seefeld")  # the fourth town
    namesake = await office.client(0, named, "seefeld")  # Lena's sub in another town

    for member in (anna, ben, lena):
        campus = (await member.request("campus.get"))["campus"]
        assert floor["id"] in floor_ids(campus)
        assert project["id"] in {p["id"] for p in campus["projects"]}
    for outsider in (lars, sven, namesake):
        campus = (await outsider.request("campus.get"))["campus"]
        assert floor["id"] not in floor_ids(campus) and campus["projects"] == []
        for attempt in (outsider.watch(floor["id"]), outsider.move(floor["id"], office_room), outsider.knock(office_room)):
            with pytest.raises(RequestError) as err:
                await attempt
            assert err.value.code == "not_found"

    # Walking in, watched by a member on the other node.
    view = await ben.watch(floor["id"])
    await lena.move(floor["id"], office_room)
    await ben.until_view(floor["id"], lambda v: v.members.get(lena.person, {}).get("room_id") == office_room)
    assert view.members[lena.person]["municipality"] == "lindenau"

    # Finder and badge: the outsider finds Lena (same cooperation) but not where she is.
    async def card(viewer_token: str) -> dict[str, Any]:
        status, body = await office.rest("GET", f"/api/v1/municipalities/lindenau/users/{named}/badge", viewer_token)
        assert status == 200, body
        return body["badge"]  # type: ignore[no-any-return]

    inside, outside = await card(office.token(unique("bo"), "bergheim")), await card(office.token(unique("si"), "seefeld"))
    assert (inside["floor_id"], inside["room_id"]) == (floor["id"], office_room)
    assert (outside["floor_id"], outside["room_id"]) == (None, None)
    assert outside["online"] is True
    for viewer, town, where in (("bo", "bergheim", (floor["id"], office_room)), ("si", "seefeld", (None, None))):
        status, body = await office.rest("GET", f"/api/v1/people/search?skill={skill}", office.token(unique(viewer), town))
        assert status == 200 and [r["person"] for r in body["results"]] == [lena.person], body
        assert (body["results"][0]["floor_id"], body["results"][0]["room_id"]) == where

    # Ringing needs a floor the caller may see (docs/calls.md): a member can ring her, the outsider cannot.
    ack = await ben.request("call.ring", {"person": lena.person})
    await lena.next_event("call.ring", lambda e: e["ring"]["ring_id"] == ack["ring"]["ring_id"])
    await ben.request("call.cancel", {"ring_id": ack["ring"]["ring_id"]})
    with pytest.raises(RequestError) as err:
        await sven.request("call.ring", {"person": lena.person})
    assert err.value.code == "not_found"

    # Occupancy: members get the floor, the fourth town the same not_found as for a missing floor.
    status, body = await office.rest("GET", f"/api/v1/floors/{floor['id']}/occupancy", office.token("x", "bergheim"))
    assert status == 200 and [o["person"] for r in body["rooms"] for o in r["occupants"]] == [lena.person]
    for token in (office.token("x", "seefeld"), office.token(named, "seefeld")):
        status, body = await office.rest("GET", f"/api/v1/floors/{floor['id']}/occupancy", token)
        assert (status, body["error"]["code"]) == (404, "not_found")
        status, body = await office.rest("GET", f"/api/v1/projects/{project['id']}", token)
        assert (status, body["error"]["code"]) == (404, "not_found")


async def test_adding_and_removing_a_member_changes_their_view_live(office: Office) -> None:
    anna = await office.client(0, unique("anna"), "altbach")
    made = await create(office, anna, template="meeting")
    project_id, floor_id = made["project"]["id"], made["floor"]["id"]
    room = made["floor"]["rooms"][0]["id"]
    sven = await office.client(1, unique("sven"), "seefeld")
    with pytest.raises(RequestError):
        await sven.watch(floor_id)

    # Added over REST by the coordinator: Sven can watch and walk in at once.
    status, body = await office.rest("POST", f"/api/v1/projects/{project_id}/members", office.token(anna.me["user_id"], "altbach"),
                                     {"person": sven.person})  # fmt: skip
    assert status == 200 and body["project"]["members"] == [sven.person], body
    told = await sven.next_event("project.updated", lambda e: e["project"]["id"] == project_id)
    assert told["project"]["floor_id"] == floor_id
    await sven.watch(floor_id)
    await sven.move(floor_id, room)
    anna_view = await anna.watch(floor_id)
    await anna.until_view(floor_id, lambda v: sven.person in v.members)

    # A plain member may not manage the project; an outsider does not even see it.
    with pytest.raises(RequestError) as err:
        await sven.request("project.update", {"project_id": project_id, "members": []})
    assert err.value.code == "forbidden"

    # Removed: his watch ends with floor.revoked, he is walked off, everyone sees him go.
    await anna.request("project.update", {"project_id": project_id, "members": []})
    revoked = await sven.next_event("floor.revoked", lambda e: e["floor_id"] == floor_id)
    assert revoked == {"floor_id": floor_id, "reason": "membership"}
    moved = await sven.next_event("presence.location", lambda e: e["reason"] == "membership")
    assert (moved["floor_id"], moved["room_id"]) == (None, None)
    await anna.until_view(floor_id, lambda v: sven.person not in v.members)
    assert sven.person not in anna_view.members
    with pytest.raises(RequestError) as err:
        await sven.watch(floor_id)
    assert err.value.code == "not_found"
    assert (await sven.request("project.list"))["projects"] == []

    # The audit trail: the coordinator reads each administrative step, and no movement.
    coordinator = office.token(anna.me["user_id"], "altbach")
    status, body = await office.rest("GET", f"/api/v1/projects/{project_id}/audit", coordinator)
    assert status == 200, body
    steps = [(e["action"], e["actor"]) for e in body["entries"]]
    assert steps == [("project.created", anna.person), ("project.member_added", anna.person),
                     ("project.member_removed", anna.person)]  # fmt: skip
    assert body["entries"][1]["change"]["members"] == {"old": [], "new": [sven.person]}
    status, body = await office.rest("GET", f"/api/v1/projects/{project_id}/audit", office.token(sven.me["user_id"], "seefeld"))
    assert (status, body["error"]["code"]) == (404, "not_found")  # no longer a member


async def test_town_policy_limits_who_creates_and_for_how_long(office: Office) -> None:
    staff = await office.client(0, unique("sina"), "seefeld")
    with pytest.raises(RequestError) as err:
        await create(office, staff)
    assert err.value.code == "forbidden"
    admin = await office.client(1, unique("sa"), "seefeld", roles=("staff", "admin"))
    assert (await create(office, admin))["project"]["coordinators"] == [admin.person]

    lin = await office.client(0, unique("lu"), "lindenau")
    with pytest.raises(RequestError) as err:
        await create(office, lin, ends_at=time.time() + 31 * 86400)
    assert (err.value.code, err.value.error["field"]) == ("invalid_payload", "ends_at")
    made = await create(office, lin)  # no end date given: the town's longest
    assert made["project"]["ends_at"] == pytest.approx(time.time() + 30 * 86400, abs=60)
    assert {r["expires_at"] for r in made["floor"]["rooms"]} == {made["project"]["ends_at"]}

    guest = await office.client(1, unique("gast"), "altbach", roles=("guest",))
    with pytest.raises(RequestError) as err:
        await create(office, guest)
    assert err.value.code == "forbidden"
    with pytest.raises(RequestError) as err:
        await create(office, lin, members={"municipalities": ["atlantis"]})
    assert (err.value.code, err.value.error["field"]) == ("invalid_payload", "municipalities")


async def test_a_project_room_closes_at_the_end_date(office: Office) -> None:
    anna = await office.client(0, unique("anna"), "altbach")
    made = await create(office, anna, template="lounge", ends_at=time.time() + 2, members={"municipalities": ["altbach"]})
    floor_id, room = made["floor"]["id"], made["floor"]["rooms"][0]["id"]
    ben = await office.client(1, unique("ben"), "altbach")
    await ben.watch(floor_id)
    await ben.move(floor_id, room)
    await ben.until_view(floor_id, lambda v: room not in v.rooms, timeout=15)
    moved = await ben.next_event("presence.location", lambda e: e["reason"] == "room_removed", timeout=5)
    assert moved["room_id"] is None
    # The project itself stays (its name is in the audit trail); its floor is empty.
    listed = (await anna.request("project.list"))["projects"]
    assert made["project"]["id"] in [p["id"] for p in listed]


async def test_deleting_a_project_revokes_its_floor(office: Office) -> None:
    anna = await office.client(0, unique("anna"), "altbach")
    made = await create(office, anna, members={"municipalities": ["bergheim"]})
    floor_id = made["floor"]["id"]
    ben = await office.client(1, unique("ben"), "bergheim")
    await ben.watch(floor_id)
    status, body = await office.rest("DELETE", f"/api/v1/projects/{made['project']['id']}",
                                     office.token(anna.me["user_id"], "altbach"))  # fmt: skip
    assert status == 200, body
    revoked = await ben.next_event("floor.revoked", lambda e: e["floor_id"] == floor_id)
    assert revoked["reason"] == "deleted"
    assert floor_id not in floor_ids((await ben.request("campus.get"))["campus"])
