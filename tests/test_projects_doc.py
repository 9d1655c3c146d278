"""docs/projects.md as written: its picture of who sees what agrees with the access
rules, and its request creates a project on a real server."""

from __future__ import annotations

import json
import re

from rooms.access import can_see_floor
from rooms.actors import Actor, Role
from rooms.model import Cooperation, Floor, OwnerKind
from rooms.person import PersonId
from rooms.project import Project
from tests.conftest import OfficeServer
from tests.support.doc_snippets import doc_snippet

COOPS = {
    "vier-taeler": Cooperation("vier-taeler", "Vier Täler", ("altbach", "bergheim", "lindenau", "seefeld")),
    "seebund": Cooperation("seebund", "Seebund", ("uferstadt",)),
}
PROJECTS = {
    "p-bau": Project(
        "p-bau", "Digitales Bauamt", "", coordinators=(PersonId("altbach/anna"),),
        members=(PersonId("lindenau/lena"), PersonId("uferstadt/xaver")), municipalities=("altbach", "bergheim"),
    ),
}  # fmt: skip
FLOORS = {
    "P": Floor("bau", "Digitales Bauamt", OwnerKind.PROJECT, "p-bau"),
    "CF": Floor("projekt", "Vier Täler", OwnerKind.COOPERATION, "vier-taeler"),
    # "Town floors" as each viewer's own town would have them; drawn for A and G.
    "TF": Floor("altbach-eg", "Altbach EG", OwnerKind.MUNICIPALITY, "altbach"),
}
ACTORS = {
    "A": Actor("alex", "altbach", "Alex"),
    "B": Actor("berta", "bergheim", "Berta"),
    "L1": Actor("lena", "lindenau", "Lena"),
    "L2": Actor("lutz", "lindenau", "Lutz"),
    "S": Actor("sina", "seefeld", "Sina"),
    "X": Actor("xaver", "uferstadt", "Xaver"),
    "G": Actor("gast-1", "altbach", "Gast", frozenset({Role.GUEST}), project="p-bau"),
}
_EDGE = re.compile(r"^\s*(\w+) (-->|-\. not_found \.->) (\w+)\s*$", re.M)


def test_the_picture_of_who_sees_what_is_what_the_rules_do() -> None:
    picture = doc_snippet("projects", "who-sees-what")
    edges = _EDGE.findall(picture)
    assert len(edges) >= 10, "the picture's edges were not found"
    for viewer, arrow, floor in edges:
        sees = can_see_floor(ACTORS[viewer], FLOORS[floor], COOPS, PROJECTS)
        assert sees is (arrow == "-->"), f"{viewer} {arrow} {floor}"
    # Every drawn viewer is accounted for at the project floor.
    assert {viewer for viewer, _, floor in edges if floor == "P"} == set(ACTORS)


async def test_the_create_request_creates_the_project(office: OfficeServer) -> None:
    request = doc_snippet("projects", "create-project")
    head, _, body = request.partition("\n\n")
    method, path = head.splitlines()[0].split(" ")
    token = office.token("anna.altbach", "altbach")
    async with office.server_session(token) as http:
        async with http.request(method, office.url + path, json=json.loads(body)) as resp:
            answer = await resp.json()
            assert resp.status == 201, answer
    project, floor = answer["project"], answer["floor"]
    assert project["name"] == "Digitales Bauamt" and project["coordinators"] == ["altbach/anna.altbach"]
    assert project["municipalities"] == ["altbach", "bergheim"] and project["members"] == ["lindenau/lena.lindner"]
    assert floor["owner_kind"] == "project" and len(floor["rooms"]) == 2
    assert project["ends_at"] is not None  # the town's longest, since the request gives none


async def test_the_invitation_body_creates_a_link(office: OfficeServer) -> None:
    token = office.token("anna.altbach", "altbach")
    async with office.server_session(token) as http:
        async with http.post("/api/v1/projects", json={"name": "Radweg"}) as resp:
            project = (await resp.json())["project"]
        body = json.loads(doc_snippet("projects", "create-invitation"))
        async with http.post(f"/api/v1/projects/{project['id']}/invitations", json=body) as resp:
            answer = await resp.json()
            assert resp.status == 201, answer
    invitation = answer["invitation"]
    assert (invitation["display_name"], invitation["max_uses"], invitation["uses"]) == ("Dr. Erika Extern", 1, 0)
    assert answer["link"].endswith("/invite#" + answer["code"])
