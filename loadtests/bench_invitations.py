"""Invitation links on two nodes sharing one Redis: how long a redemption takes,
and how long from a revocation on node A until a guest on node B hears
``session.ended``. Prints figures; gates nothing.

    .venv/bin/python -m loadtests.bench_invitations [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from presence_server.auth import mint_token
from signalling.client import OfficeClient
from tests.conftest import make_settings
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer

SETTINGS = make_settings()


def token(user: str, municipality: str = "altbach") -> str:
    return mint_token(SETTINGS.auth, municipality=municipality, user_id=user, name=user.title())


async def post(http: aiohttp.ClientSession, url: str, body: Any, bearer: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def bench(a: str, b: str, rounds: int) -> None:
    anna = token("anna.bench")
    async with aiohttp.ClientSession() as http:
        _, made = await post(http, f"{a}/api/v1/projects", {"name": "Bench", "template": "meeting"}, anna)
        project = made["project"]["id"]
        redeem_ms: list[float] = []
        revoke_ms: list[float] = []
        for _ in range(rounds):
            status, inv = await post(http, f"{a}/api/v1/projects/{project}/invitations", {"display_name": "Gast"}, anna)
            assert status == 201, inv
            started = time.perf_counter()
            status, guest_pass = await post(http, f"{b}/api/v1/invitations/redeem", {"code": inv["code"]})
            redeem_ms.append((time.perf_counter() - started) * 1000)
            assert status == 200, guest_pass
            guest = await OfficeClient(b, guest_pass["token"]).connect()
            try:
                started = time.perf_counter()
                async with http.delete(f"{a}/api/v1/projects/{project}/invitations/{inv['invitation']['id']}",
                                       headers={"Authorization": f"Bearer {anna}"}) as resp:  # fmt: skip
                    assert resp.status == 200
                await guest.next_event("session.ended", timeout=10)
                revoke_ms.append((time.perf_counter() - started) * 1000)
            finally:
                await guest.disconnect()
    for name, values in (("redeem (REST, node B)", redeem_ms), ("revoke on A -> session.ended on B", revoke_ms)):
        values.sort()
        print(f"{name}: median {statistics.median(values):.1f} ms, "
              f"p90 {values[int(len(values) * 0.9) - 1]:.1f} ms, max {values[-1]:.1f} ms (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-inv-"))
    redis = RedisServer().start()
    nodes: list[ServerProcess] = []
    try:
        env = {"PRESENCE_REDIS__URL": redis.url, "PRESENCE_REDIS__PREFIX": f"b{uuid.uuid4().hex[:6]}:",
               "PRESENCE_LOG__LEVEL": "warning", "PRESENCE_INVITATIONS__REDEEM_PER_MINUTE": "10000",
               "PRESENCE_INVITATIONS__RECHECK_SECONDS": "600"}  # fmt: skip
        nodes = [ServerProcess(env, log_path=logs / f"node{i}.log").start() for i in range(2)]
        asyncio.run(bench(nodes[0].url, nodes[1].url, args.rounds))
    finally:
        for node in nodes:
            node.stop()
        redis.cleanup()


if __name__ == "__main__":
    main()
