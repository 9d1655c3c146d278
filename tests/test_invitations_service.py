"""The invitation service's background loops run supervised (docs/architecture.md):
a crash is logged, counted and the loop keeps working — and the recheck loop is
the safety net that ends a revoked invitation's guests even when no bus message
told this node. In-process server; real Socket.IO clients."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from presence_server.config_invitations import InvitationSettings
from presence_server.invitations_rest import INVITATIONS
from presence_server.invitations.service import InvitationService
from rooms.actors import Actor
from signalling.client import OfficeClient, RequestError
from tests.conftest import OfficeServer, StartServer, make_settings
from tests.test_supervised_loops import Crashes, crashed_once, crashes, fail_once, restarts  # noqa: F401 (fixture)

ANNA = Actor("anna.altbach", "altbach", "Anna Albrecht")


async def guest_of_a_project(office: OfficeServer) -> tuple[InvitationService, str, OfficeClient]:
    anna = await office.client("anna.altbach", "altbach")
    made = await anna.request("project.create", {"name": "Auenschutz", "template": "meeting"})
    service = office.server.app[INVITATIONS]
    invitation, code = await service.create(ANNA, made["project"]["id"], display_name="Gast", max_uses=1)
    guest_pass: dict[str, Any] = await service.redeem(code)
    guest = OfficeClient(office.url, guest_pass["token"])
    office.clients.append(guest)
    await guest.connect()
    return service, invitation.id, guest


async def test_invitation_recheck_ends_guests_of_a_revocation_no_message_announced(
    start_server: StartServer, crashes: Crashes
) -> None:
    office = await start_server({"PRESENCE_INVITATIONS__RECHECK_SECONDS": "0.2"})
    service, invitation_id, guest = await guest_of_a_project(office)
    before = restarts("invitation_recheck")
    fail_once(service, "recheck")
    await service.store.revoke(invitation_id)  # in the store only: as if the bus lost the message
    await crashed_once(crashes, "invitation_recheck", before)
    ended = await guest.next_event("session.ended", timeout=5)
    assert ended["error"]["code"] == "invitation_revoked"
    await guest.wait_disconnected(timeout=5)


async def test_invitation_bus(start_server: StartServer, crashes: Crashes) -> None:
    office = await start_server({"PRESENCE_INVITATIONS__RECHECK_SECONDS": "600"})
    service, invitation_id, guest = await guest_of_a_project(office)
    before = restarts("invitation_bus")
    fail_once(service, "_end_local")
    service.on_bus({"revoked": "inv-of-nobody-here"})  # this one's handling crashes the loop
    await crashed_once(crashes, "invitation_bus", before)
    service.on_bus({"revoked": invitation_id})  # another node revoked the guest's invitation
    ended = await guest.next_event("session.ended", timeout=5)
    assert ended["error"]["code"] == "invitation_revoked"


async def test_a_project_has_at_most_max_per_project_open_invitations(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_INVITATIONS__MAX_PER_PROJECT": "2"})
    anna = await office.client("anna.altbach", "altbach")
    project = (await anna.request("project.create", {"name": "Auenschutz"}))["project"]["id"]
    body = {"project_id": project, "display_name": "Gast"}
    first = await anna.request("invitation.create", body)
    await anna.request("invitation.create", body)
    with pytest.raises(RequestError) as err:
        await anna.request("invitation.create", body)
    assert err.value.code == "conflict"
    await anna.request("invitation.revoke", {"project_id": project, "invitation_id": first["invitation"]["id"]})
    await anna.request("invitation.create", body)  # a revoked one no longer counts


async def test_redeeming_is_limited_per_address(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_INVITATIONS__REDEEM_PER_MINUTE": "3"})
    async with aiohttp.ClientSession() as http:
        codes = []
        for _ in range(4):
            async with http.post(f"{office.url}/api/v1/invitations/redeem", json={"code": "guessed"}) as resp:
                codes.append((resp.status, (await resp.json())["error"]["code"]))
    assert codes == [(404, "not_found")] * 3 + [(429, "rate_limited")]


async def test_without_a_signing_secret_there_are_no_invitations(start_server: StartServer) -> None:
    office = await start_server(settings=make_settings().model_copy(update={"invitations": InvitationSettings()}))
    anna = await office.client("anna.altbach", "altbach")
    project = (await anna.request("project.create", {"name": "Auenschutz"}))["project"]["id"]
    with pytest.raises(RequestError) as err:
        await anna.request("invitation.create", {"project_id": project, "display_name": "Gast"})
    assert err.value.code == "unavailable"
