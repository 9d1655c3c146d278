"""Who may read /metrics, over real HTTP: a listener of its own (then not on
the main port), a bearer token (401 in the one error shape without it), both
together, and the configuration that sets them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest

from presence_server.config import ConfigError, load_settings
from presence_server.metrics_http import METRICS_LISTENER
from tests.conftest import DEFAULT_CONFIG, OfficeServer, StartServer

TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
PRODUCTION_TOML = Path(__file__).resolve().parents[1] / "config" / "production.example.toml"
STRONG = "s" * 40


def metrics_url(office: OfficeServer) -> str:
    return f"http://127.0.0.1:{office.server.app[METRICS_LISTENER].port}/metrics"


async def fetch(url: str, **headers: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(url) as resp:
            return resp.status, resp.content_type, await resp.text()


def assert_unauthenticated(status: int, content_type: str, body: str) -> None:
    assert (status, content_type) == (401, "application/json")
    answer = json.loads(body)
    assert answer["ok"] is False and answer["error"]["code"] == "unauthenticated"
    assert "Bearer" in answer["error"]["message"] and TOKEN not in body


async def test_metrics_on_a_listener_of_their_own_are_not_served_on_the_main_port(
    start_server: StartServer,
) -> None:
    office = await start_server({"PRESENCE_METRICS__PORT": "0"})  # 0: a free port, picked at start
    status, content_type, text = await fetch(metrics_url(office))
    assert (status, content_type) == (200, "text/plain") and "vo_sessions" in text
    assert office.server.app[METRICS_LISTENER].port != office.server.port
    async with office.server_session() as http:
        async with http.get("/metrics") as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
        async with http.get("/healthz") as resp:
            assert resp.status == 200  # the rest of the main port is as before
    # The metrics listener serves metrics and nothing else.
    status, _, body = await fetch(metrics_url(office).replace("/metrics", "/api/v1/campus"))
    assert status == 404 and "not_found" in body


async def test_a_metrics_token_is_required_once_configured(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_METRICS__TOKEN": TOKEN})
    url = office.url + "/metrics"
    assert_unauthenticated(*await fetch(url))
    assert_unauthenticated(*await fetch(url, Authorization=f"Bearer {TOKEN[:-1]}"))
    assert_unauthenticated(*await fetch(url, Authorization=f"Bearer {TOKEN}x"))
    assert_unauthenticated(*await fetch(url, Authorization=f"Basic {TOKEN}"))
    # A user's JWT is not the metrics token.
    assert_unauthenticated(*await fetch(url, Authorization=f"Bearer {office.token('anna.altbach', 'altbach')}"))
    status, content_type, text = await fetch(url, Authorization=f"Bearer {TOKEN}")
    assert (status, content_type) == (200, "text/plain") and "vo_sessions" in text


async def test_a_listener_of_their_own_can_require_the_token_too(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_METRICS__PORT": "0", "PRESENCE_METRICS__HOST": "127.0.0.1",
                                 "PRESENCE_METRICS__TOKEN": TOKEN})
    assert_unauthenticated(*await fetch(metrics_url(office)))
    status, _, text = await fetch(metrics_url(office), Authorization=f"bearer {TOKEN}")  # the scheme is case-blind
    assert status == 200 and "vo_sessions" in text


async def test_metrics_stay_open_on_the_main_port_by_default(office: OfficeServer) -> None:
    assert METRICS_LISTENER not in office.server.app
    status, _, text = await fetch(office.url + "/metrics")
    assert status == 200 and "vo_sessions" in text


@pytest.fixture
def _no_presence_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PRESENCE_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("_no_presence_env")
def test_metrics_settings_are_checked_at_start() -> None:
    settings = load_settings(DEFAULT_CONFIG, env={"PRESENCE_METRICS__PORT": "9180", "PRESENCE_METRICS__HOST": "10.0.0.11"})
    assert (settings.metrics.port, settings.metrics.listen_host, settings.metrics.token) == (9180, "10.0.0.11", None)
    assert load_settings(DEFAULT_CONFIG, env={"PRESENCE_METRICS__PORT": "9180"}).metrics.listen_host == "127.0.0.1"
    for env, problem in [
        ({"PRESENCE_METRICS__HOST": "0.0.0.0"}, "metrics.host: only used with metrics.port"),
        ({"PRESENCE_METRICS__PORT": "8080"}, "metrics.port: must differ from http.port (8080)"),
        ({"PRESENCE_METRICS__PORT": "70000"}, "metrics.port: Input should be less than or equal to 65535"),
        ({"PRESENCE_METRICS__TOKEN": ""}, "metrics.token: must not be empty"),
        ({"PRESENCE_METRICS__TOKNE": TOKEN}, "metrics.tokne: unknown key"),
        ({"PRESENCE_DEV_MODE": "false", "PRESENCE_METRICS__TOKEN": "short"},
         "metrics.token: must be at least 32 bytes when dev_mode is false (set it in the environment variable"
         " PRESENCE_METRICS__TOKEN)"),
    ]:
        with pytest.raises(ConfigError) as refused:
            load_settings(DEFAULT_CONFIG, env=env)
        assert problem in str(refused.value), (env, str(refused.value))
        assert "short" not in str(refused.value)  # a token is never echoed


@pytest.mark.usefixtures("_no_presence_env")
def test_the_production_example_protects_metrics() -> None:
    settings = load_settings(PRODUCTION_TOML, env={
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__SECRET": STRONG,
        "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET": STRONG,
    })
    assert settings.metrics.port is not None and settings.metrics.port != settings.http.port
    assert settings.metrics.listen_host == "127.0.0.1"
