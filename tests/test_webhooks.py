"""Webhooks against a real server and a real receiver on a loopback port that
verifies every signature on its own: which municipality receives what, knock
events without their message, delivery under a full queue, retries, refusals
and timeouts, and where deliveries may not go (redirects, loopback, private
and link-local destinations).

The receivers listen on 127.0.0.1, which webhooks may reach only with an
explicit ``allow_networks`` opt-in: the tests' receivers are configured with
``["127.0.0.0/8"]`` unless a test is about that rule."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web

from presence_server.config import ConfigError, load_settings
from presence_server.metrics import REGISTRY
from tests.conftest import DEFAULT_CONFIG, OfficeServer, StartServer
from tests.support.portal import eventually, ferndorf_env, person
from tests.support.webhook_receiver import Delivery, Receiver, verify_signature

FLOOR = "projekt"
SECRETS = {
    "altbach": b"altbach-webhook-secret-0123456789abcdef",
    "bergheim": b"bergheim-webhook-secret-0123456789abcdef",
    "ferndorf": b"ferndorf-webhook-secret-0123456789abcdef",
}


LOOPBACK = '["127.0.0.0/8"]'  # the receivers' address: a relay on the same host


def webhook_env(receiver: Receiver | None, municipality: str, name: str, *, events: str | None = None,
                path: str | None = None, url: str | None = None, allow: str | None = LOOPBACK) -> dict[str, str]:
    key = f"PRESENCE_AUTH__MUNICIPALITIES__{municipality.upper()}__WEBHOOKS__{name.upper()}__"
    if url is None:
        assert receiver is not None
        url = receiver.url(path or municipality)
    env = {key + "URL": url, key + "SECRET": SECRETS[municipality].decode()}
    if events is not None:
        env[key + "EVENTS"] = events
    if allow is not None:
        env[key + "ALLOW_NETWORKS"] = allow
    return env


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def until_sample(name: str, value: float, *, timeout: float = 5.0, **labels: str) -> None:
    """Wait until a counter reaches ``value``: outcomes are counted after the
    receiver's answer is read, so there is no event of the test's own to await."""
    async def reached() -> bool:
        return sample(name, **labels) >= value

    await eventually(reached, timeout=timeout)


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
    await until_sample("vo_webhook_events_total", before["delivered"] + 3,
                       municipality="altbach", webhook="small", result="delivered")


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
    await until_sample("vo_webhook_events_total", failed + 2,  # refuse, down
                       municipality="altbach", webhook="flaky", result="failed")
    never.set()  # let the abandoned slow answer finish


async def test_a_redirect_is_a_failed_delivery_and_its_target_receives_nothing(
    start_server: StartServer, receiver: Receiver
) -> None:
    # Both receivers are allowed destinations: only the redirect rule stands between them.
    elsewhere = await Receiver(dict(SECRETS)).start()
    try:
        # 307 asks the client to repeat the POST, body and signature included, at Location.
        receiver.answer = lambda d: web.Response(status=307, headers={"Location": elsewhere.url("altbach")})
        office = await start_server({**webhook_env(receiver, "altbach", "moved"),
                                     "PRESENCE_PORTAL__WEBHOOK_BACKOFF_SECONDS": "0.01"})
        labels = {"municipality": "altbach", "webhook": "moved"}
        failed = sample("vo_webhook_events_total", result="failed", **labels)
        attempts = sample("vo_webhook_attempts_total", **labels)
        anna = await person(office, "anna.altbach", "altbach")
        await anna.move(FLOOR)
        await receiver.until(lambda ds: len(ds) == 1)
        await until_sample("vo_webhook_events_total", failed + 1, result="failed", **labels)
        # Final at once: one attempt, not retried, and nothing went to the Location.
        assert sample("vo_webhook_attempts_total", **labels) - attempts == 1
        assert len(receiver.deliveries) == 1 and elsewhere.deliveries == []
    finally:
        await elsewhere.stop()


async def test_loopback_and_private_destinations_are_refused_without_an_opt_in_naming_them(
    start_server: StartServer, receiver: Receiver
) -> None:
    by_name = f"http://localhost:{receiver.port}"  # resolved at send time: caught, not only the URL text
    refused = {  # webhook name: (url, allow_networks, reason)
        "literal": (receiver.url("literal"), None, "loopback"),
        "byname": (f"{by_name}/byname", None, "loopback"),
        "intranet": ("http://10.20.30.40:8080/intranet", '["192.168.0.0/16"]', "private"),
    }
    office = await start_server({
        **{k: v for name, (url, allow, _) in refused.items()
           for k, v in webhook_env(None, "altbach", name, url=url, allow=allow).items()},
        # The control: the same receiver by name, with the opt-in for a relay on this host.
        **webhook_env(None, "altbach", "relay", url=f"{by_name}/altbach", allow=LOOPBACK),
    })
    before = {name: (sample("vo_webhook_refused_total", municipality="altbach", webhook=name, reason=reason),
                     sample("vo_webhook_attempts_total", municipality="altbach", webhook=name))
              for name, (_, _, reason) in refused.items()}
    anna = await person(office, "anna.altbach", "altbach")
    await anna.move(FLOOR)
    await receiver.until(lambda ds: any(d.path == "altbach" for d in ds))
    for name, (_, _, reason) in refused.items():
        await until_sample("vo_webhook_refused_total", before[name][0] + 1,
                           municipality="altbach", webhook=name, reason=reason)
        # Refused before connecting: no HTTP attempt, no retry.
        assert sample("vo_webhook_attempts_total", municipality="altbach", webhook=name) == before[name][1]
    assert {d.path for d in receiver.deliveries} == {"altbach"} and all(d.valid for d in receiver.deliveries)


async def test_link_local_and_unspecified_destinations_are_refused_whatever_the_opt_in_says(
    start_server: StartServer, receiver: Receiver
) -> None:
    everything = '["0.0.0.0/0", "::/0"]'  # the broadest opt-in there is
    refused = {  # webhook name: (url, reason)
        "metadata": ("http://169.254.169.254/latest/meta-data/", "link_local"),
        "mapped": ("http://[::ffff:169.254.169.254]/latest/meta-data/", "link_local"),
        "v6": ("http://[fe80::1]:8080/hooks", "link_local"),
        # On Linux a connect to 0.0.0.0 reaches this host: the receiver would see it.
        "unspecified": (f"http://0.0.0.0:{receiver.port}/unspecified", "unspecified"),
    }
    office = await start_server({
        k: v for name, (url, _) in refused.items()
        for k, v in webhook_env(None, "altbach", name, url=url, allow=everything).items()
    })
    before = {name: (sample("vo_webhook_refused_total", municipality="altbach", webhook=name, reason=reason),
                     sample("vo_webhook_events_total", municipality="altbach", webhook=name, result="failed"),
                     sample("vo_webhook_attempts_total", municipality="altbach", webhook=name))
              for name, (_, reason) in refused.items()}
    anna = await person(office, "anna.altbach", "altbach")
    await anna.move(FLOOR)
    await anna.set_status("busy")  # a second event: each is refused on its own
    for name, (_, reason) in refused.items():
        refusals, failed, attempts = before[name]
        await until_sample("vo_webhook_refused_total", refusals + 2,
                           municipality="altbach", webhook=name, reason=reason)
        assert sample("vo_webhook_events_total", municipality="altbach", webhook=name, result="failed") == failed + 2
        assert sample("vo_webhook_attempts_total", municipality="altbach", webhook=name) == attempts
    assert receiver.deliveries == []


def test_webhook_secrets_come_from_the_environment_and_are_checked(tmp_path: Path) -> None:
    conf = tmp_path / "hooks.toml"
    conf.write_text(DEFAULT_CONFIG.read_text() + "\n[auth.municipalities.altbach.webhooks.intranet]\n"
                    'url = "https://intranet.altbach.example/hooks/office"\nsecret = "from-the-file"\n')
    secret_env = "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET"
    settings = load_settings(conf, env={secret_env: "x" * 40})
    hook = settings.auth.municipalities["altbach"].webhooks["intranet"]
    assert hook.secret.get_secret_value() == "x" * 40 and hook.events == ["presence", "knock"]
    assert hook.url == "https://intranet.altbach.example/hooks/office" and hook.allow_networks == []
    allowed = load_settings(conf, env={
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__ALLOW_NETWORKS": '["10.20.0.0/16", "fd00::/8"]'})
    assert [str(n) for n in allowed.auth.municipalities["altbach"].webhooks["intranet"].networks] == [
        "10.20.0.0/16", "fd00::/8"]
    with pytest.raises(ConfigError) as refused:
        strong = {f"PRESENCE_AUTH__MUNICIPALITIES__{m}__SECRET": "s" * 40
                  for m in ("ALTBACH", "BERGHEIM", "LINDENAU", "SEEFELD")}
        load_settings(conf, env={"PRESENCE_DEV_MODE": "false", **strong})
    assert "auth.municipalities.altbach.webhooks.intranet.secret: must be at least 32 bytes" in str(refused.value)
    for key, value, problem in [
        ("URL", "ftp://x", "webhooks.intranet.url"),
        ("EVENTS", '["presence", "calls"]', "webhooks.intranet.events"),
        ("SECRET", "", "webhooks.intranet.secret"),
        ("ALLOW_NETWORKS", '["10.0.0.1/8"]', "webhooks.intranet.allow_networks: '10.0.0.1/8' is not a CIDR"),
        ("ALLOW_NETWORKS", '["intranet"]', "webhooks.intranet.allow_networks: 'intranet' is not a CIDR"),
        ("ALLOW_NETWORKS", '["169.254.0.0/16"]', "'169.254.0.0/16' is link-local: such addresses are always"),
        ("ALLOW_NETWORKS", '["::/128"]', "'::/128' is unspecified"),
    ]:
        with pytest.raises(ConfigError) as refused:
            load_settings(conf, env={f"PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__{key}": value})
        assert problem in str(refused.value)


async def test_project_floor_events_reach_only_member_municipalities(office: OfficeServer, receiver: Receiver) -> None:
    """A project of Bergheim (a member town) with Anna of Altbach named as coordinator:
    Bergheim's systems see the project floor; Altbach's do not (one named person does
    not make the town a member), nor Ferndorf's."""
    anna = await person(office, "anna.altbach", "altbach")
    ben = await person(office, "ben.bergheim", "bergheim")
    frida = await person(office, "frida.ferndorf", "ferndorf")
    made = await anna.request("project.create", {"name": "Radweg", "members": {"municipalities": ["bergheim"]}})
    project_floor = made["floor"]["id"]
    await ben.move(project_floor)
    await anna.move(project_floor)
    await ben.set_status("busy", "Planung")
    # Barriers: a later event for each receiver, on a floor it does see.
    await anna.move(FLOOR)
    await anna.set_status("away")
    await frida.move("ferndorf-eg")
    await frida.set_status("away")
    await receiver.until(lambda ds: any(d.path == "bergheim" and d.event["type"] == "presence.status"
                                        and d.event["floor_id"] == project_floor for d in ds)
                         and any(d.path == "altbach" and d.event["type"] == "presence.status" for d in ds)
                         and any(d.path == "ferndorf" and d.event["type"] == "presence.status" for d in ds))
    assert project_floor in floors(receiver, "bergheim")
    assert project_floor not in floors(receiver, "altbach") | floors(receiver, "ferndorf")
