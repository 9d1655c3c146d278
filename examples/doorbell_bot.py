"""Türklingel / doorbell: a bot that sits in a room and rings whoever walks in.

Built on the Python SDK as the README describes it (``OfficeClient``,
``CallPeer``, the ``view.diff`` event). The bot walks into its room, watches the
floor, and for each person who enters the room (a ``joined`` or ``moved`` diff
into it) rings them by person id. When they accept, it greets them over the
call's data channel in German and English and echoes what they write until
they hang up.

Run it with a token of its own (development: ``presence-server token``)::

    python -m examples.doorbell_bot --url http://127.0.0.1:8080 --token "$BOT_TOKEN" \\
        --floor altbach-eg --room altbach-buergerbuero

or with ``OFFICE_URL``, ``OFFICE_TOKEN``, ``DOORBELL_FLOOR``, ``DOORBELL_ROOM``.

Contract: one conversation at a time — people who enter meanwhile wait their
turn and are rung only if they are still in the room then. A conversation ends
when the visitor hangs up, or after ``--max-talk`` seconds. Someone in
do-not-disturb gets a note instead of a ring. SIGINT or SIGTERM hangs up, leaves
and disconnects, exit status 0; a lost connection ends the bot with status 1 (no
reconnect of its own: run it under a supervisor that restarts it), a refused
token with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Final, Sequence

from signalling.client import VIEW_DIFF, ConnectRefused, Diff, OfficeClient, Person, RequestError
from signalling.webrtc import CallPeer

__all__ = ["Options", "DoorbellBot", "run_bot", "main", "greeting", "echo"]

log = logging.getLogger("doorbell_bot")

EXIT_STOPPED: Final = 0
EXIT_CONNECTION_LOST: Final = 1
EXIT_REFUSED: Final = 2


def greeting(room_name: str) -> str:
    return (
        f"Guten Tag! Sie sind im Raum „{room_name}“. Schreiben Sie mir, ich antworte mit einem Echo. "
        f"/ Good day! You are in “{room_name}”. Write to me and I will echo it."
    )


def echo(text: str) -> str:
    return f"Echo: {text}"


GOODBYE: Final = "Auf Wiedersehen! / Goodbye!"
NOTE: Final = "Die Türklingel hat geläutet, als Sie hereinkamen. / The doorbell rang when you came in."


@dataclass(frozen=True)
class Options:
    url: str
    token: str
    floor_id: str
    room_id: str
    max_talk_seconds: float = 300.0


class DoorbellBot:
    """The bot on one connected client. :meth:`run` until ``stop`` is set."""

    def __init__(self, client: OfficeClient, floor_id: str, room_id: str, *, max_talk_seconds: float = 300.0) -> None:
        self.client = client
        self.floor_id = floor_id
        self.room_id = room_id
        self.max_talk_seconds = max_talk_seconds
        self.peer = CallPeer(client, audio=False)
        self._visitors: asyncio.Queue[Person] = asyncio.Queue()
        self._waiting: set[Person] = set()  # queued and not yet rung: enter twice, rung once

    async def run(self, stop: asyncio.Event) -> int:
        """Sit in the room and answer the door until ``stop`` is set (status 0) or
        the connection is lost (status 1). Always hangs up before it returns."""
        await self.client.move(self.floor_id, self.room_id)
        self.client.on(VIEW_DIFF, self._on_diff)
        await self.client.watch(self.floor_id)
        log.info("waiting in %s on %s as %s", self.room_id, self.floor_id, self.client.person)
        doorbell = asyncio.create_task(self._answer_the_door(), name="doorbell")
        stopped = asyncio.create_task(stop.wait())
        lost = asyncio.create_task(self.client.wait_disconnected())
        try:
            await asyncio.wait({doorbell, stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (doorbell, stopped, lost):
                task.cancel()
            await asyncio.gather(doorbell, stopped, lost, return_exceptions=True)
            await self.peer.close()  # hangs up a conversation still going on
        return EXIT_STOPPED if stop.is_set() else EXIT_CONNECTION_LOST

    def _on_diff(self, diff: Diff) -> None:
        """Someone came in: queue them for the doorbell."""
        came_in = diff.type in ("joined", "moved") and diff.floor_id == self.floor_id and diff.room_id == self.room_id
        if came_in and diff.person is not None and diff.person != self.client.person and diff.person not in self._waiting:
            self._waiting.add(diff.person)
            self._visitors.put_nowait(diff.person)

    async def _answer_the_door(self) -> None:
        while True:
            person = await self._visitors.get()
            self._waiting.discard(person)
            try:
                await self._welcome(person)
            except (RequestError, TimeoutError, ConnectionError) as exc:
                # One visitor's trouble (they left, hung up early, ICE failed) is not the bot's.
                log.warning("conversation with %s ended early: %r", person, exc)
            except Exception:  # a bug: logged with its traceback, and the door stays answered
                log.exception("conversation with %s failed", person)

    async def _welcome(self, person: Person) -> None:
        view = self.client.views[self.floor_id]
        if person not in view.occupants(self.room_id):
            return  # left before their turn
        try:
            ring = await self.peer.ring(person)
        except RequestError as exc:
            if exc.code == "do_not_disturb":
                await self.client.note(person, NOTE)
            else:  # offline meanwhile, or already ringing / in a call with us
                log.info("not ringing %s: %s %s", person, exc.code, exc.reason or "")
            return
        outcome = await self.peer.outcome(ring)
        log.info("rang %s: %s", person, outcome.outcome)
        if not outcome.accepted:
            return
        room_name = str(view.rooms.get(self.room_id, {}).get("name", self.room_id))
        await self.peer.send(person, greeting(room_name))
        try:
            async with asyncio.timeout(self.max_talk_seconds):
                async for text in self.peer.messages(person):
                    await self.peer.send(person, echo(text))
        except TimeoutError:  # they stayed on the line: say goodbye and hang up
            await self.peer.send(person, GOODBYE)
            await self.peer.leave()
        log.info("conversation with %s over", person)


async def run_bot(options: Options, stop: asyncio.Event) -> int:
    """Connect, run the bot until ``stop`` is set or the connection is lost, disconnect.
    Returns the exit status (module docstring)."""
    try:
        async with OfficeClient(options.url, options.token, lang="de", mailbox_limit=100) as client:
            bot = DoorbellBot(client, options.floor_id, options.room_id, max_talk_seconds=options.max_talk_seconds)
            status = await bot.run(stop)
    except ConnectRefused as exc:
        log.error("the server refused the connection: %s", exc.code)
        return EXIT_REFUSED
    if status == EXIT_CONNECTION_LOST:
        log.error("connection lost")
    return status


def parse_args(argv: Sequence[str] | None = None) -> Options:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m examples.doorbell_bot", description="Türklingel: rings whoever walks into its room."
    )
    parser.add_argument("--url", default=env.get("OFFICE_URL", "http://127.0.0.1:8080"), help="server (OFFICE_URL)")
    parser.add_argument("--token", default=env.get("OFFICE_TOKEN"), help="the bot's JWT (OFFICE_TOKEN)")
    parser.add_argument("--floor", default=env.get("DOORBELL_FLOOR"), help="floor id (DOORBELL_FLOOR)")
    parser.add_argument("--room", default=env.get("DOORBELL_ROOM"), help="room id (DOORBELL_ROOM)")
    parser.add_argument("--max-talk", type=float, default=300.0, metavar="SECONDS", help="longest conversation")
    args = parser.parse_args(argv)
    for name in ("token", "floor", "room"):
        if not getattr(args, name):
            parser.error(f"--{name} (or its environment variable) is required")
    return Options(args.url, args.token, args.floor, args.room, args.max_talk)


async def main(argv: Sequence[str] | None = None) -> int:
    """The command: the bot until SIGINT or SIGTERM."""
    options = parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await run_bot(options, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))
