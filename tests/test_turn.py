"""TURN credentials (coturn REST API convention) and the RTCIceServer list."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signalling.turn import DEFAULT_TTL, ice_servers, turn_credential

SECRET = "north-wind"
STUN = ["stun:stun.example.org:3478"]
TURN = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]


def independent_password(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_password_is_base64_hmac_sha1_of_the_username_with_the_secret() -> None:
    cred = turn_credential(SECRET, "lea", now=1_700_000_000.0, ttl=600)
    assert cred.password == independent_password(SECRET, cred.username)
    assert len(base64.b64decode(cred.password)) == 20  # an SHA-1 digest


def test_username_carries_the_expiry_then_the_user_id() -> None:
    cred = turn_credential(SECRET, "lea", now=1_700_000_000.4, ttl=600)
    assert cred.username == "1700000600:lea"
    assert cred.expires_at == 1_700_000_600
    expiry, _, user = cred.username.partition(":")
    assert int(expiry) == cred.expires_at and user == "lea"


def test_default_lifetime_applies_and_another_secret_gives_another_password() -> None:
    cred = turn_credential(SECRET, "lea", now=1000.0)
    assert cred.expires_at == int(1000 + DEFAULT_TTL)
    assert turn_credential("other", "lea", now=1000.0).password != cred.password


def test_bytes_secret_matches_str_secret() -> None:
    assert turn_credential(SECRET.encode(), "lea", 5.0).password == turn_credential(SECRET, "lea", 5.0).password


@pytest.mark.parametrize("secret, user, ttl", [("", "lea", 60), (SECRET, "", 60), (SECRET, "lea", 0)])
def test_bad_credential_input_is_refused(secret: str, user: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        turn_credential(secret, user, 0.0, ttl)


def test_ice_servers_with_stun_and_turn_have_the_browser_shape() -> None:
    servers = ice_servers(STUN, TURN, SECRET, "lea", now=2000.0, ttl=300)
    assert servers[0] == {"urls": STUN}
    turn = servers[1]
    assert set(turn) == {"urls", "username", "credential"}
    assert turn["urls"] == TURN
    assert turn["username"] == "2300:lea"
    assert turn["credential"] == independent_password(SECRET, "2300:lea")
    assert len(servers) == 2


def test_no_turn_entry_without_a_secret_or_without_turn_urls() -> None:
    assert ice_servers(STUN, TURN, None, "lea", 0.0) == [{"urls": STUN}]
    assert ice_servers(STUN, TURN, "", "lea", 0.0) == [{"urls": STUN}]
    assert ice_servers(STUN, [], SECRET, "lea", 0.0) == [{"urls": STUN}]


def test_turn_only_and_nothing_at_all() -> None:
    servers = ice_servers([], TURN, SECRET, "lea", 0.0)
    assert len(servers) == 1 and servers[0]["urls"] == TURN
    assert ice_servers([], [], SECRET, "lea", 0.0) == []


def test_url_lists_are_copies() -> None:
    stun = list(STUN)
    servers = ice_servers(stun, [], None, "lea", 0.0)
    servers[0]["urls"].append("stun:evil")
    assert stun == STUN
