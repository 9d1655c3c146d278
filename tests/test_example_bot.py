"""The doorbell bot of examples/ against a real server: a real aiortc visitor walks
into its room, is rung, picks up, and hears the greeting and its echo.

Every wait is bounded; the bot as a command is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import pytest

from examples.doorbell_bot import Options, echo, run_bot
from signalling.client import OfficeClient, Ring
from signalling.webrtc import CallPeer
from tests.conftest import ROOT, OfficeServer

FLOOR, ROOM = "altbach-eg", "altbach-buergerbuero"  # an open service counter
BOT = "altbach/tuerklingel"


def bot_options(office: OfficeServer) -> Options:
    token = office.token("tuerklingel", "altbach", name="Türklingel Bürgerbüro")
    return Options(office.url, token, FLOOR, ROOM, max_talk_seconds=30)


async def bot_in_its_room(watcher: OfficeClient) -> None:
    await watcher.until_view(FLOOR, lambda v: BOT in v.occupants(ROOM), timeout=20)


async def test_the_bot_rings_whoever_walks_in_greets_them_and_echoes(
    office: OfficeServer, caplog: pytest.LogCaptureFixture
) -> None:
    visitor = await office.client("anna.altbach", "altbach")
    passer_by = await office.client("karl.altbach", "altbach")
    await passer_by.move(FLOOR)
    await visitor.watch(FLOOR)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING):
        bot = asyncio.create_task(run_bot(bot_options(office), stop))
        try:
            await bot_in_its_room(visitor)
            await passer_by.move(FLOOR, "altbach-teekueche")  # another room: no ring
            calls = CallPeer(visitor, audio=False)
            try:
                await visitor.move(FLOOR, ROOM)
                ring: Ring = await visitor.expect("call.ring", timeout=10)
                assert ring.caller.person == BOT and ring.caller.name == "Türklingel Bürgerbüro"
                await calls.accept(ring)
                hello = await calls.receive(BOT, timeout=15)
                assert hello.startswith("Guten Tag!") and "Good day!" in hello and "Bürgerbüro" in hello
                await calls.send(BOT, "Ich brauche einen Anwohnerparkausweis.")
                assert await calls.receive(BOT) == echo("Ich brauche einen Anwohnerparkausweis.")
                await calls.send(BOT, "Danke!")
                assert await calls.receive(BOT) == "Echo: Danke!"
            finally:
                await calls.close()  # hangs up
            assert calls.errors == []
            assert passer_by.pending_events("call.ring") == []
        finally:
            stop.set()
            status = await asyncio.wait_for(bot, 15)
    assert status == 0
    await visitor.until_view(FLOOR, lambda v: BOT not in v.members, timeout=5)  # it left (grace 0.3 s)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_bot_command_stops_cleanly_on_a_signal(office: OfficeServer, sig: signal.Signals) -> None:
    watcher = await office.client("anna.altbach", "altbach")
    await watcher.watch(FLOOR)
    options = bot_options(office)
    env = {**os.environ, "OFFICE_URL": options.url, "OFFICE_TOKEN": options.token,
           "DOORBELL_FLOOR": FLOOR, "DOORBELL_ROOM": ROOM}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.doorbell_bot", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await bot_in_its_room(watcher)
        proc.send_signal(sig)
        output, _ = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, output.decode()
        assert b"Traceback" not in output, output.decode()
        await watcher.until_view(FLOOR, lambda v: BOT not in v.members, timeout=5)
    finally:
        if proc.returncode is None:  # only the process this test started, by its PID
            proc.kill()
            await proc.wait()


async def test_the_bot_command_says_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFICE_", "DOORBELL_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.doorbell_bot", "--floor", FLOOR, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2 and b"--token (or its environment variable) is required" in err
