"""The audit trail in cluster mode: real server processes over one real Redis. An
entry recorded on one node is read on another; a knock admitted across nodes is
recorded once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest

from presence_server.auth import mint_token
from signalling.client import OfficeClient
from tests.conftest import make_settings
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

SETTINGS = make_settings()
FLOOR, MEETING = "projekt", "projekt-besprechung"


def token(user: str, municipality: str, roles: tuple[str, ...] = ("staff",)) -> str:
    return mint_token(SETTINGS.auth, municipality=municipality, user_id=user, name=user.split(".")[0].title(),
                      roles=roles)


@pytest.fixture(scope="module")
def two_nodes(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    logs: Path = tmp_path_factory.mktemp("audit-cluster-logs")
    env = {"PRESENCE_REDIS__URL": redis_server.url, "PRESENCE_REDIS__PREFIX": f"a{uuid.uuid4().hex[:8]}:",
           "PRESENCE_LOG__LEVEL": "info"}
    nodes: list[ServerProcess] = []
    try:
        for i in range(2):
            nodes.append(ServerProcess(env, log_path=logs / f"node{i}.log").start())
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def audit(node: ServerProcess, admin: str, since: float) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession(node.url, headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.get("/api/v1/audit", params={"since": str(since)}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return list(body["entries"])


async def test_an_entry_written_on_one_node_is_read_on_the_other(two_nodes: list[ServerProcess]) -> None:
    since = time.time()
    admin = token("ada.lindenau", "lindenau", roles=("staff", "admin"))
    async with aiohttp.ClientSession(two_nodes[0].url, headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.patch("/api/v1/rooms/projekt-lounge", json={"door": "closed"}) as resp:
            assert resp.status == 200, await resp.text()
    entries = await audit(two_nodes[1], token("ben.admin", "bergheim", roles=("staff", "admin")), since)
    assert [(e["action"], e["actor"], e["target"]["room"]) for e in entries] == [
        ("door.changed", "lindenau/ada.lindenau", "projekt-lounge")
    ]
    assert entries == await audit(two_nodes[0], admin, since)


async def test_a_knock_admitted_across_nodes_is_recorded_once(two_nodes: list[ServerProcess]) -> None:
    since = time.time()
    clients = [OfficeClient(two_nodes[0].url, token("lea.lindenau", "lindenau")),
               OfficeClient(two_nodes[1].url, token("ben.bergheim", "bergheim"))]
    lea, ben = clients
    try:
        await lea.connect()
        await ben.connect()
        await lea.move(FLOOR, MEETING)
        await ben.move(FLOOR)
        knock = await ben.knock(MEETING)
        await lea.answer(knock["knock_id"], admit=True)
        entries = await audit(two_nodes[1], token("ada.seefeld", "seefeld", roles=("staff", "admin")), since)
        assert [(e["action"], e["actor"], e["target"]["person"]) for e in entries] == [
            ("knock.admitted", "lindenau/lea.lindenau", "bergheim/ben.bergheim")
        ]
    finally:
        for client in clients:
            await client.disconnect()
