"""Webhooks against a real server and a real receiver on a loopback port that
verifies every signature on its own: which municipality receives what, knock
events without their message, and delivery under a full queue, retries,
refusals and timeouts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from presence_server.config import ConfigError, load_settings
from presence_server.metrics import REGISTRY
from tests.conftest import DEFAULT_CONFIG, OfficeServer, StartServer
from tests.support.portal import ferndorf_env, person
from tests.support.webhook_receiver import Delivery, Receiver, verify_signature

FLOOR = "projekt"
SECRETS = {
    "altbach": b"altbach-webhook-secret-0123456789abcdef",
    "bergheim": b"bergheim-webhook-secret-0123456789abcdef",
    "ferndorf": b"ferndorf-webhook-secret-0123456789abcdef",
}


def webhook_env(receiver: Receiver, municipality: str, name: str, *, events: str | None = None,
                path: str | None = None) -> dict[str, str]:
    key = f"PRESENCE_AUTH__MUNICIPALITIES__{municipality.upper()}__WEBHOOKS__{name.upper()}__"
    env = {key + "URL": receiver.url(path or municipality), key + "SECRET": SECRETS[municipality].decode()}
    if events is not None:
        env[key + "EVENTS"] = events
    return env


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = await Receiver(dict(SECRETS)).start()
    yield rec
    await rec.stop()


@pytest.fixture
async def office(start_server: StartServer, receiver: Receiver, tmp_path: Path) -> OfficeServer:
    return await start_server({
        **ferndorf_env(tmp_path),
        **webhook_env(receiver, "altbach", "intranet"),
        **webhook_env(receiver, "bergheim", "intranet", events='["presence"]'),
        **webhook_env(receiver, "ferndorf", "intranet"),
    })


def floors(receiver: Receiver, path: str) -> set[str]:
    return {e["floor_id"] for e in receiver.events(path)}


async def test_presence_events_are_signed_and_reach_only_municipalities_that_see_the_floor(
    office: OfficeServer, receiver: Receiver
) -> None:
    anna = await person(office, "anna.altbach", "altbach", name="Anna Albrecht")
    ben = await person(office, "ben.bergheim", "bergheim")
    frida = await person(office, "frida.ferndorf", "ferndorf")
    await anna.move(FLOOR)  # the cooperation's floor: Altbach and Bergheim
    await ben.move("bergheim-eg")  # Bergheim's own floor: Bergheim only
    await frida.move("ferndorf-eg", "ferndorf-buero")  # Ferndorf only
    await anna.set_status("busy", "Haushalt")
    await frida.set_status("away")
    # Each receiver's events come in the order made: once the last ones are in,
    # anything wrongly routed to them would have arrived before.
    await receiver.until(lambda ds: any(d.event["type"] == "presence.status" and d.path == "altbach" for d in ds)
                         and any(d.event["type"] == "presence.status" and d.path == "bergheim" for d in ds)
                         and any(d.event["type"] == "presence.status" and d.path == "ferndorf" for d in ds))
    assert all(d.valid for d in receiver.deliveries)
    assert floors(receiver, "altbach") == {FLOOR}
    assert floors(receiver, "bergheim") == {FLOOR, "bergheim-eg"}
    assert floors(receiver, "ferndorf") == {"ferndorf-eg"}
    assert all(e["municipality"] == path for path in SECRETS for e in receiver.events(path))

    joined = next(d for d in receiver.deliveries if d.path == "altbach" and d.event["type"] == "presence.joined")
    event = joined.event
    assert event["floor_id"] == FLOOR and isinstance(event["occurred_at"], float) and len(event["id"]) == 32
    member = event["data"]["member"]
    assert (member["person"], member["user_id"], member["name"]) == ("altbach/anna.altbach", "anna.altbach", "Anna Albrecht")
    assert isinstance(event["data"]["seq"], int)
    assert joined.headers["X-VO-Event"] == "presence.joined" and joined.headers["X-VO-Delivery"] == event["id"]
    assert joined.headers["Content-Type"] == "application/json"
    status = next(e for e in receiver.events("altbach") if e["type"] == "presence.status")
    assert status["data"] | {"seq": 0} == {"seq": 0, "person": "altbach/anna.altbach", "status": "busy", "text": "Haushalt"}
    # The independent check is a real check: another key or a changed body fails it.
    header = joined.headers["X-VO-Signature"]
    assert verify_signature(SECRETS["altbach"], header, joined.body)
    assert not verify_signature(SECRETS["bergheim"], header, joined.body)
    assert not verify_signature(SECRETS["altbach"], header, joined.body.replace(b"Anna", b"Otto"))


async def test_knock_events_are_sent_without_the_message_and_only_to_subscribers(
    office: OfficeServer, receiver: Receiver
) -> None:
    lea = await person(office, "lea.lindenau", "lindenau")
    await lea.move(FLOOR, "projekt-besprechung")  # her room, door closed
    anna = await person(office, "anna.altbach", "altbach")
    await anna.move(FLOOR)
    knock = await anna.knock("projekt-besprechung", "Vertraulich: Haushaltssperre")
    incoming = await lea.next_event("knock.incoming")
    await lea.answer(incoming["knock_id"], admit=True)
    await anna.set_status("busy")  # the last event Bergheim may see
    await receiver.until(lambda ds: any(d.event["type"] == "knock.resolved" for d in ds)
                         and any(d.path == "bergheim" and d.event["type"] == "presence.status" for d in ds))
    knocks = [e for e in receiver.events("altbach") if e["type"].startswith("knock.")]
    assert [e["type"] for e in knocks] == ["knock.opened", "knock.resolved"]
    opened, resolved = knocks
    assert opened["data"]["knock_id"] == knock["knock_id"] and opened["data"]["room_id"] == "projekt-besprechung"
    assert opened["data"]["knocker"]["person"] == "altbach/anna.altbach" and "message" not in opened["data"]
    assert opened["data"]["knocker"]["user_id"] == "anna.altbach"
    assert (resolved["data"]["outcome"], resolved["data"]["by"]) == ("admitted", "lindenau/lea.lindenau")
    assert resolved["data"]["knocker_id"] == "altbach/anna.altbach"
    assert not any(b"Haushaltssperre" in d.body for d in receiver.deliveries)
    assert not [e for e in receiver.events("bergheim") if e["type"].startswith("knock.")]  # presence only
    assert not receiver.events("ferndorf")


async def test_a_full_queue_drops_the_oldest_events_and_counts_them(
    start_server: StartServer, receiver: Receiver
) -> None:
    office = await start_server({**webhook_env(receiver, "altbach", "small", path="altbach"),
                                 "PRESENCE_PORTAL__WEBHOOK_QUEUE_SIZE": "2"})
    before = {r: sample("vo_webhook_events_total", municipality="altbach", webhook="small", result=r)
              for r in ("dropped", "delivered")}
    receiver.hold = asyncio.Event()
    anna = await person(office, "anna.altbach", "altbach")
    await anna.move(FLOOR)
    await receiver.until(lambda ds: len(ds) == 1)  # the worker is stuck on the first event
    for n in range(1, 5):
        await anna.set_status("busy", f"Termin {n}")  # queued by the time the answer is back
    assert sample("vo_webhook_queue_depth", municipality="altbach", webhook="small") == 2
    receiver.hold.set()
    deliveries = await receiver.until(lambda ds: len(ds) == 3)
    assert [(d.event["type"], d.event["data"].get("text")) for d in deliveries] == [
        ("presence.joined", None), ("presence.status", "Termin 3"), ("presence.status", "Termin 4")]
    after = {r: sample("vo_webhook_events_total", municipality="altbach", webhook="small", result=r)
             for r in ("dropped", "delivered")}
    assert after["dropped"] - before["dropped"] == 2
    await asyncio.wait_for(_until_metric("delivered", "small", before["delivered"] + 3), 5)


async def _until_metric(result: str, webhook: str, value: float) -> None:
    # Counted after the receiver's answer is read: poll the counter with a deadline (wait_for above).
    while sample("vo_webhook_events_total", municipality="altbach", webhook=webhook, result=result) < value:
        await asyncio.sleep(0.02)


async def test_failed_attempts_are_retried_with_the_same_delivery_id_and_refusals_are_final(
    start_server: StartServer, receiver: Receiver
) -> None:
    office = await start_server({**webhook_env(receiver, "altbach", "flaky", path="altbach"),
                                 "PRESENCE_PORTAL__WEBHOOK_BACKOFF_SECONDS": "0.05",
                                 "PRESENCE_PORTAL__WEBHOOK_TIMEOUT_SECONDS": "0.5",
                                 "PRESENCE_PORTAL__WEBHOOK_RETRIES": "2"})
    never = asyncio.Event()
    seen: dict[str, int] = {}

    async def answer(d: Delivery) -> int:
        seen[d.event["id"]] = attempt = seen.get(d.event["id"], 0) + 1
        text = d.event["data"].get("text")
        if text == "refuse":
            return 400
        if text == "slow" and attempt == 1:
            await asyncio.wait_for(never.wait(), 5)  # outlasts the sender's timeout
        if text == "down":
            return 503
        return 503 if attempt == 1 and text == "flaky" else 204

    receiver.answer = answer
    failed = sample("vo_webhook_events_total", municipality="altbach", webhook="flaky", result="failed")
    anna = await person(office, "anna.altbach", "altbach")
    await anna.move(FLOOR)
    for text in ("flaky", "refuse", "slow", "down", "last"):
        await anna.set_status("busy", text)
    deliveries = await receiver.until(lambda ds: any(d.event["data"].get("text") == "last" for d in ds), timeout=10)
    attempts = [d.event["data"].get("text") for d in deliveries if d.event["type"] == "presence.status"]
    assert attempts == ["flaky", "flaky", "refuse", "slow", "slow", "down", "down", "down", "last"]
    flaky = [d for d in deliveries if d.event["data"].get("text") == "flaky"]
    assert flaky[0].headers["X-VO-Delivery"] == flaky[1].headers["X-VO-Delivery"]
    assert all(d.valid for d in deliveries)
    await asyncio.wait_for(_until_metric("failed", "flaky", failed + 2), 5)  # refuse, down
    never.set()  # let the abandoned slow answer finish


def test_webhook_secrets_come_from_the_environment_and_are_checked(tmp_path: Path) -> None:
    conf = tmp_path / "hooks.toml"
    conf.write_text(DEFAULT_CONFIG.read_text() + "\n[auth.municipalities.altbach.webhooks.intranet]\n"
                    'url = "https://intranet.altbach.example/hooks/office"\nsecret = "from-the-file"\n')
    secret_env = "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET"
    settings = load_settings(conf, env={secret_env: "x" * 40})
    hook = settings.auth.municipalities["altbach"].webhooks["intranet"]
    assert hook.secret.get_secret_value() == "x" * 40 and hook.events == ["presence", "knock"]
    assert hook.url == "https://intranet.altbach.example/hooks/office"
    with pytest.raises(ConfigError) as refused:
        strong = {f"PRESENCE_AUTH__MUNICIPALITIES__{m}__SECRET": "s" * 40
                  for m in ("ALTBACH", "BERGHEIM", "LINDENAU", "SEEFELD")}
        load_settings(conf, env={"PRESENCE_DEV_MODE": "false", **strong})
    assert "auth.municipalities.altbach.webhooks.intranet.secret: must be at least 32 bytes" in str(refused.value)
    for key, value, problem in [
        ("URL", "ftp://x", "webhooks.intranet.url"),
        ("EVENTS", '["presence", "calls"]', "webhooks.intranet.events"),
        ("SECRET", "", "webhooks.intranet.secret"),
    ]:
        with pytest.raises(ConfigError) as refused:
            load_settings(conf, env={f"PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__{key}": value})
        assert problem in str(refused.value)
