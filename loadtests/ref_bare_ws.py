"""Reference 2: a bare aiohttp WebSocket broadcaster, the ceiling of this stack.

Clients connect to ``/ws``; the driver connects to ``/ws?role=driver``. Each text
message ``{"t": .., "n": ..}`` from the driver is encoded once into a frame of
the same JSON shape as the presence server's ``floor.diffs`` payload, and that
one ``bytes`` object is sent to every socket with ``send_frame`` (aiohttp's public
API; ``send_str`` would encode the text again for every socket). No rooms, no
protocol, no bus: what is left is aiohttp's own cost per frame and socket.

Runs on the standard asyncio loop, like the presence server.

    python loadtests/ref_bare_ws.py --port 8102
"""

from __future__ import annotations

import argparse
import json

from aiohttp import WSMsgType, web

FLOOR_ID = "projekt"
SOCKETS = web.AppKey("sockets", set)


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=0)
    await ws.prepare(request)
    sockets: set[web.WebSocketResponse] = request.app[SOCKETS]
    if request.query.get("role") == "driver":
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await broadcast(sockets, msg.data)
        return ws
    sockets.add(ws)
    try:
        async for _ in ws:  # watchers send nothing; wait for the close
            pass
    finally:
        sockets.discard(ws)
    return ws


async def broadcast(sockets: set[web.WebSocketResponse], change: str) -> None:
    data = json.loads(change)
    t, n = float(data["t"]), int(data["n"])
    diff = {"seq": n, "type": "status", "person": "altbach/driver.altbach", "status": "busy", "text": f"{t:.6f}"}
    frame = json.dumps({"floor_id": FLOOR_ID, "diffs": [diff]}, separators=(",", ":")).encode()
    for ws in list(sockets):
        if ws.closed:
            continue
        try:
            await ws.send_frame(frame, WSMsgType.TEXT)
        except ConnectionError:
            sockets.discard(ws)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = set()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
