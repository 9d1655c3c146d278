"""Reference 1: the multi-node recipe of python-socketio's documentation.

``AsyncServer(client_manager=AsyncRedisManager(url))`` and one
``emit(room=...)`` per change, nothing else: every client joins the room
``floor`` on connect; the driver's ``change`` event ``{t, n}`` becomes one
``floor.diffs`` frame of the same shape as the presence server's, carrying ``t``
as the text of a status diff. With several processes on one Redis, every node
delivers to its own clients (the manager publishes each emit on Redis).

Runs on the standard asyncio loop, like the presence server.

    python loadtests/ref_socketio_redis.py --port 8101 --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
from aiohttp import web

ROOM = "floor"
FLOOR_ID = "projekt"


def build_app(redis_url: str) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=socketio.AsyncRedisManager(redis_url),
        logger=False,
        engineio_logger=False,
    )
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # The load generator's driver identifies itself and stays out of the audience.
        if not (isinstance(auth, dict) and auth.get("driver")):
            await sio.enter_room(sid, ROOM)

    @sio.event
    async def change(sid: str, data: dict[str, Any]) -> None:
        t, n = float(data["t"]), int(data["n"])
        diff = {"seq": n, "type": "status", "person": "altbach/driver.altbach", "status": "busy", "text": f"{t:.6f}"}
        await sio.emit("floor.diffs", {"floor_id": FLOOR_ID, "diffs": [diff]}, room=ROOM)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True, help="Redis URL, e.g. redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    web.run_app(build_app(args.redis), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
