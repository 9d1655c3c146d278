"""Which addresses a webhook may reach: the classification, the opt-in, and the
resolver that applies it to what DNS answers (a stand-in DNS here: the test is
about what the resolver does with an answer, whatever the answer is)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from presence_server.webhook_guard import DestinationPolicy, DestinationRefused, GuardedResolver, never_allowed

LOOPBACK_OK = DestinationPolicy([ipaddress.ip_network("127.0.0.0/8")])
EVERYTHING = DestinationPolicy([ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fd00:ec2::254", "private"),  # fc00::/7, e.g. AWS's IPv6 metadata address
        ("fec0::1", "private"),  # deprecated site-local
        ("169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("fe80::1%2", "link_local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        # IPv4 inside IPv6 is judged by the IPv4 address.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link_local"),
        ("64:ff9b::a9fe:a9fe", "link_local"),  # NAT64
        ("64:ff9b::5db8:d70e", None),
        ("2002:7f00:1::1", "loopback"),  # 6to4
    ],
)
def test_addresses_are_classified_without_opt_in(address: str, reason: str | None) -> None:
    assert DestinationPolicy().reason(address) == reason


def test_an_opt_in_opens_only_the_networks_it_names_and_never_link_local_or_unspecified() -> None:
    assert LOOPBACK_OK.reason("127.0.0.1") is None
    assert LOOPBACK_OK.reason("::1") == "loopback"  # not named
    assert LOOPBACK_OK.reason("10.0.0.1") == "private"
    assert EVERYTHING.reason("10.0.0.1") is None and EVERYTHING.reason("::1") is None
    for address, reason in [("169.254.169.254", "link_local"), ("fe80::1", "link_local"), ("0.0.0.0", "unspecified"),
                            ("::", "unspecified"), ("224.0.0.1", "multicast"), ("255.255.255.255", "reserved")]:
        assert EVERYTHING.reason(address) == reason


def test_ip_literals_in_urls_are_checked_before_any_request() -> None:
    refusal = DestinationPolicy().check_url("http://169.254.169.254/latest/meta-data/")
    assert refusal is not None and (refusal.address, refusal.reason) == ("169.254.169.254", "link_local")
    refusal = DestinationPolicy().check_url("https://[::ffff:10.0.0.1]:8443/hooks")
    assert refusal is not None and refusal.reason == "private"
    assert DestinationPolicy().check_url("https://intranet.altbach.example/hooks") is None  # a name: resolver's job
    assert DestinationPolicy().check_url("https://93.184.215.14/hooks") is None
    assert LOOPBACK_OK.check_url("http://127.0.0.1:9000/hooks") is None


def test_allow_networks_entries_that_could_never_apply_are_recognised() -> None:
    never = {cidr: never_allowed(ipaddress.ip_network(cidr)) for cidr in
             ("169.254.0.0/16", "169.254.169.254/32", "fe80::/64", "0.0.0.0/8", "::/128", "224.0.0.0/8", "240.0.0.0/4",
              "127.0.0.0/8", "10.0.0.0/8", "0.0.0.0/0", "::/0")}
    assert never == {"169.254.0.0/16": "link_local", "169.254.169.254/32": "link_local", "fe80::/64": "link_local",
                     "0.0.0.0/8": "unspecified", "::/128": "unspecified", "224.0.0.0/8": "multicast",
                     "240.0.0.0/4": "reserved", "127.0.0.0/8": None, "10.0.0.0/8": None, "0.0.0.0/0": None,
                     "::/0": None}


class AnswersInTurn(AbstractResolver):
    """DNS as an attacker's name server may run it: a different answer each time."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.closed = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = self._answers.pop(0)
        return [ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                              proto=0, flags=0) for a in addresses]

    async def close(self) -> None:
        self.closed = True


async def test_the_resolver_checks_every_answer_so_a_name_rebound_to_loopback_is_refused() -> None:
    resolver = GuardedResolver(DestinationPolicy(), AnswersInTurn(["93.184.215.14"], ["127.0.0.1"]))
    assert [r["host"] for r in await resolver.resolve("hooks.example", 443)] == ["93.184.215.14"]
    with pytest.raises(DestinationRefused) as refused:
        await resolver.resolve("hooks.example", 443)
    assert (refused.value.host, refused.value.address, refused.value.reason) == ("hooks.example", "127.0.0.1", "loopback")
    assert not isinstance(refused.value, OSError)  # aiohttp would turn an OSError into a retried connection error


async def test_the_resolver_passes_on_only_the_allowed_addresses_of_a_mixed_answer() -> None:
    inner = AnswersInTurn(["169.254.169.254", "93.184.215.14", "::1", "2606:4700::1111"], ["10.0.0.5", "::1"])
    resolver = GuardedResolver(LOOPBACK_OK, inner)
    assert [r["host"] for r in await resolver.resolve("hooks.example", 443)] == ["93.184.215.14", "2606:4700::1111"]
    with pytest.raises(DestinationRefused) as refused:
        await resolver.resolve("hooks.example", 443)
    assert (refused.value.address, refused.value.reason) == ("10.0.0.5", "private")  # the first refused one
    await resolver.close()
    assert inner.closed
