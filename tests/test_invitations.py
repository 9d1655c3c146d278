"""Invitation links (docs/projects.md, "Invitations"), with real server processes,
real Socket.IO clients and, for the call, real WebRTC (aiortc).

Every test runs against one server process and against two server processes
sharing one real Redis (the guest and the coordinator on different nodes where
it matters). The project: Anna of Altbach coordinates it, Ben of Bergheim is a
named member — and Altbach itself is *not* a member, so the guest, whose host
town is Altbach, must not see Altbach's floors or its other staff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from signalling.client import ConnectRefused, OfficeClient, RequestError
from signalling.webrtc import CallPeer
from tests.support.office import NODE_KINDS, Office, start_nodes, unique
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.slow


# A recheck slower than any wait below: ending guests on the other node is the bus's work.
NODE_SETTINGS = {"PRESENCE_INVITATIONS__RECHECK_SECONDS": "600", "PRESENCE_INVITATIONS__REDEEM_PER_MINUTE": "1000"}


@pytest.fixture(scope="module", params=NODE_KINDS)
def nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    with start_nodes(request, tmp_path_factory, logs="invitation-logs", prefix="i", extra=NODE_SETTINGS) as started:
        yield started


@pytest.fixture
async def office(nodes: list[ServerProcess]) -> AsyncIterator[Office]:
    async with Office(nodes) as office:
        yield office


async def rest(office: Office, node: int, method: str, path: str, token: str | None = None,
               body: Any = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, office.url(node) + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


class Project:
    """A project of Anna (Altbach) with Ben (Bergheim) named; one closed meeting room."""

    def __init__(self, office: Office, anna: OfficeClient, made: dict[str, Any]) -> None:
        self.office, self.anna = office, anna
        self.id: str = made["project"]["id"]
        self.floor: str = made["floor"]["id"]
        self.room: str = made["floor"]["rooms"][0]["id"]
        self.anna_token = office.token(anna.me["user_id"], "altbach")

    async def invite(self, node: int = 0, **fields: Any) -> dict[str, Any]:
        status, body = await rest(self.office, node, "POST", f"/api/v1/projects/{self.id}/invitations",
                                  self.anna_token, {"display_name": "Dr. Erika Extern", **fields})  # fmt: skip
        assert status == 201, body
        return body


async def project(office: Office, ben_user: str) -> Project:
    anna = await office.client(0, unique("anna"), "altbach", skills=["Naturschutzrecht"])
    made = await anna.request("project.create", {
        "name": "Auenschutz", "template": "meeting", "members": {"persons": [f"bergheim/{ben_user}"]},
    })  # fmt: skip
    p = Project(office, anna, made)

    await office.until_known_everywhere(f"/api/v1/projects/{p.id}", p.anna_token)  # made on node 0
    return p


async def redeem(office: Office, node: int, code: str) -> tuple[int, dict[str, Any]]:
    return await rest(office, node, "POST", "/api/v1/invitations/redeem", None, {"code": code})


async def guest_client(office: Office, node: int, token: str) -> OfficeClient:
    client = OfficeClient(office.url(node), token)
    office.clients.append(client)
    return await client.connect()


async def test_a_guest_sees_only_the_project_knocks_is_admitted_and_talks_with_a_member(office: Office) -> None:
    ben_user = unique("ben")
    p = await project(office, ben_user)
    anna = p.anna
    # Anna sits in the meeting room; then she closes its door over REST.
    await anna.watch(p.floor)
    await anna.move(p.floor, p.room)
    status, body = await rest(office, 0, "PATCH", f"/api/v1/rooms/{p.room}", p.anna_token, {"door": "closed"})
    assert status == 200 and body["room"]["door"] == "closed", body

    made = await p.invite(max_uses=1)
    invitation, code = made["invitation"], made["code"]
    assert made["link"].endswith(f"/invite#{code}") and len(code) >= 22  # >= 128 bits, in the fragment
    assert (invitation["project_id"], invitation["uses"], invitation["max_uses"]) == (p.id, 0, 1)
    assert invitation["created_by"] == anna.person and "code_hash" not in invitation

    status, guest_pass = await redeem(office, 1, code)
    assert status == 200, guest_pass
    assert (guest_pass["project_id"], guest_pass["floor_id"]) == (p.id, p.floor)
    assert guest_pass["expires_at"] <= invitation["expires_at"]
    guest = await guest_client(office, 1, guest_pass["token"])
    assert guest.person == f"altbach/gast-{invitation['id']}-1" and guest.me["guest"] is True
    assert guest.me["name"] == "Dr. Erika Extern"

    # Only the project's floor: no town floor, not even the host town's.
    campus = (await guest.request("campus.get"))["campus"]
    assert [f["id"] for f in campus["floors"]] == [p.floor]
    for town_floor in ("projekt", "altbach"):
        with pytest.raises(RequestError) as err:
            await guest.watch(town_floor)
        assert err.value.code == "not_found"

    # The finder and badges show a confined guest only the project's members: Anna
    # and Ben, never Lars of the guest's own host town.
    ben = await office.client(0, ben_user, "bergheim", skills=["Naturschutzrecht"])
    lars = await office.client(1, unique("lars"), "altbach", skills=["Naturschutzrecht"])
    status, found = await rest(office, 1, "GET", "/api/v1/people/search?skill=Naturschutzrecht", guest_pass["token"])
    assert status == 200, found
    assert {r["person"] for r in found["results"]} == {anna.person, ben.person}
    status, card = await rest(office, 0, "GET", f"/api/v1/municipalities/altbach/users/{lars.me['user_id']}/badge",
                              guest_pass["token"])  # fmt: skip
    assert (status, card["error"]["code"]) == (404, "not_found")
    status, card = await rest(office, 0, "GET", f"/api/v1/municipalities/altbach/users/{anna.me['user_id']}/badge",
                              guest_pass["token"])  # fmt: skip
    assert status == 200 and card["badge"]["room_id"] == p.room

    # The closed door: walking in is refused, a knock is admitted by Anna inside.
    await guest.watch(p.floor)
    await guest.move(p.floor)
    with pytest.raises(RequestError) as err:
        await guest.move(p.floor, p.room)
    assert err.value.code == "knock_required"
    knock = await guest.knock(p.room, "Guten Tag, ich bin zum Termin da")
    incoming = await anna.next_event("knock.incoming", lambda k: k["knocker"]["person"] == guest.person)
    assert incoming["knock_id"] == knock.knock_id
    await anna.answer(knock.knock_id, True)
    moved = await guest.next_event("presence.location", lambda e: e["reason"] == "admitted")
    assert moved["room_id"] == p.room
    await anna.until_view(p.floor, lambda v: v.members.get(guest.person, {}).get("room_id") == p.room)

    # A room call with media and data flowing both ways.
    anna_peer, guest_peer = CallPeer(anna), CallPeer(guest)
    try:
        await anna_peer.join_room_call(p.room)
        await guest_peer.join_room_call(p.room)
        await anna_peer.wait_connected(guest.person, timeout=20)
        await guest_peer.wait_connected(anna.person, timeout=20)
        await guest_peer.send(anna.person, "Hallo aus der Ferne")
        assert await anna_peer.receive(guest.person) == "Hallo aus der Ferne"
        await anna_peer.send(guest.person, "Willkommen im Projekt")
        assert await guest_peer.receive(anna.person) == "Willkommen im Projekt"
        assert await anna_peer.wait_audio_frames(guest.person, 5) >= 5
        assert await guest_peer.wait_audio_frames(anna.person, 5) >= 5
    finally:
        await guest_peer.close()
        await anna_peer.close()
    assert anna_peer.errors == [] and guest_peer.errors == []

    # The audit trail for the coordinator: the link, its use and the admission — never the guest's walks.
    status, body = await rest(office, 0, "GET", f"/api/v1/projects/{p.id}/audit", p.anna_token)
    assert status == 200, body
    actions = [e["action"] for e in body["entries"]]
    assert actions[:1] == ["project.created"] and {"invitation.created", "invitation.redeemed"} <= set(actions)
    admitted = [e for e in body["entries"] if e["action"] == "knock.admitted"]
    assert [(e["actor"], e["target"]["person"]) for e in admitted] == [(anna.person, guest.person)]
    redeemed = next(e for e in body["entries"] if e["action"] == "invitation.redeemed")
    assert redeemed["actor"] is None and guest.person not in repr(redeemed)


async def test_a_single_use_link_and_an_expiry_hold(office: Office) -> None:
    p = await project(office, unique("ben"))
    once = await p.invite(max_uses=1)
    assert (await redeem(office, 0, once["code"]))[0] == 200
    status, body = await redeem(office, len(office.nodes) - 1, once["code"])
    assert (status, body["error"]["code"]) == (410, "invitation_used_up")
    status, body = await redeem(office, 0, once["code"] + "x")
    assert (status, body["error"]["code"]) == (404, "not_found")

    short = await p.invite(max_uses=5, expires_in_seconds=2)
    expires_at = short["invitation"]["expires_at"]
    status, body = await redeem(office, 0, short["code"])
    assert status == 200 and body["expires_at"] <= expires_at
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.3)  # until the known expiry has passed
    status, body = await redeem(office, len(office.nodes) - 1, short["code"])
    assert (status, body["error"]["code"]) == (410, "invitation_expired")

    status, listed = await rest(office, 0, "GET", f"/api/v1/projects/{p.id}/invitations", p.anna_token)
    assert status == 200
    assert {i["id"]: i["uses"] for i in listed["invitations"]} == {once["invitation"]["id"]: 1,
                                                                   short["invitation"]["id"]: 1}  # fmt: skip


async def test_concurrent_redemptions_of_the_last_use_have_exactly_one_winner(office: Office) -> None:
    p = await project(office, unique("ben"))
    for _ in range(5):
        code = (await p.invite(max_uses=1))["code"]
        answers = await asyncio.gather(*(redeem(office, node, code) for node in (0, 1, 0, 1)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 410, 410, 410], answers
        assert {b["error"]["code"] for s, b in answers if s == 410} == {"invitation_used_up"}


async def test_only_coordinators_manage_invitations(office: Office) -> None:
    ben_user = unique("ben")
    p = await project(office, ben_user)
    ben = await office.client(0, ben_user, "bergheim")
    with pytest.raises(RequestError) as err:
        await ben.request("invitation.create", {"project_id": p.id, "display_name": "X"})
    assert err.value.code == "forbidden"
    sven = await office.client(0, unique("sven"), "seefeld")
    with pytest.raises(RequestError) as err:
        await sven.request("invitation.list", {"project_id": p.id})
    assert err.value.code == "not_found"
    made = await p.anna.request("invitation.create", {"project_id": p.id, "display_name": "Gast", "max_uses": 2})
    guest = await guest_client(office, 0, (await redeem(office, 0, made["code"]))[1]["token"])
    with pytest.raises(RequestError) as err:
        await guest.request("invitation.create", {"project_id": p.id, "display_name": "Noch ein Gast"})
    assert err.value.code == "forbidden"
    with pytest.raises(RequestError) as err:
        await p.anna.request("invitation.create", {"project_id": p.id, "display_name": "", "max_uses": 51})
    assert err.value.code == "invalid_payload"
    listed = (await p.anna.request("invitation.list", {"project_id": p.id}))["invitations"]
    assert [(i["id"], i["uses"], i["revoked"]) for i in listed] == [(made["invitation"]["id"], 1, False)]


async def test_revoking_ends_the_guests_on_every_node_and_their_tokens(office: Office) -> None:
    p = await project(office, unique("ben"))
    made = await p.invite(max_uses=2)
    passes = [(await redeem(office, node, made["code"]))[1] for node in (0, 1)]
    guests = [await guest_client(office, node, gp["token"]) for node, gp in zip((0, 1), passes)]
    for guest in guests:
        await guest.watch(p.floor)

    status, body = await rest(office, 0, "DELETE", f"/api/v1/projects/{p.id}/invitations/{made['invitation']['id']}",
                              p.anna_token)  # fmt: skip
    assert status == 200 and body["invitation"]["revoked"] is True and body["invitation"]["uses"] == 2
    for guest in guests:  # the one on the other node too: told over the bus
        ended = await guest.next_event("session.ended", timeout=5)
        assert ended["error"]["code"] == "invitation_revoked"
        await guest.wait_disconnected(timeout=5)

    for node, gp in zip((0, 1), passes):
        with pytest.raises(ConnectRefused) as refused:
            await OfficeClient(office.url(node), gp["token"]).connect()
        assert refused.value.code == "invitation_revoked"
    status, body = await redeem(office, 0, made["code"])
    assert (status, body["error"]["code"]) == (410, "invitation_revoked")
    status, body = await rest(office, 1, "GET", "/api/v1/campus", passes[0]["token"])  # REST too
    assert (status, body["error"]["code"]) == (410, "invitation_revoked")


async def test_deleting_the_project_ends_its_guests(office: Office) -> None:
    p = await project(office, unique("ben"))
    made = await p.invite()
    guest_pass = (await redeem(office, 1, made["code"]))[1]
    guest = await guest_client(office, 1, guest_pass["token"])
    await guest.watch(p.floor)
    status, _ = await rest(office, 0, "DELETE", f"/api/v1/projects/{p.id}", p.anna_token)
    assert status == 200
    ended = await guest.next_event("session.ended", timeout=5)
    assert ended["error"]["code"] == "invitation_revoked"
    await guest.wait_disconnected(timeout=5)
    with pytest.raises(ConnectRefused) as refused:
        await OfficeClient(office.url(0), guest_pass["token"]).connect()
    assert refused.value.code == "invitation_revoked"


async def test_the_projects_end_ends_its_guests(office: Office) -> None:
    anna = await office.client(0, unique("anna"), "altbach")
    made = await anna.request("project.create", {"name": "Kurzprojekt", "template": "lounge",
                                                 "ends_at": time.time() + 600})  # fmt: skip
    p = Project(office, anna, made)
    invited = await p.invite()
    guest_pass = (await redeem(office, 1, invited["code"]))[1]
    guest = await guest_client(office, 1, guest_pass["token"])
    # The coordinator moves the end date to a few seconds from now (on the other node).
    ends_at = time.time() + 3
    await anna.request("project.update", {"project_id": p.id, "ends_at": ends_at})
    ended = await guest.next_event("session.ended", timeout=15)
    assert ended["error"]["code"] == "invitation_expired"
    assert time.time() >= ends_at - 0.5  # at the end, not before
    await guest.wait_disconnected(timeout=5)
