"""Where webhooks may be sent: a check of the *resolved* address of every delivery.

A webhook URL is configuration, but the name in it is resolved by DNS at send
time, and DNS is not ours: a receiver's name may point (or be re-pointed, "DNS
rebinding") at the server's own loopback, at the cloud metadata service
(169.254.169.254) or at an intranet host the server can reach and the
receiver's owner cannot. So the check is made on the addresses the connection
will actually use, not on the URL text:

* IP literals in the URL are checked before any request
  (:meth:`DestinationPolicy.check_url`) — aiohttp never asks a resolver about
  them;
* names are resolved by :class:`GuardedResolver`, which hands the connector only
  the addresses the policy allows, and raises :class:`DestinationRefused` when
  none is left. The connector connects only to what its resolver returned (and
  caches only that), so there is no window between check and use.

Classes of addresses (:func:`refusal_reason`):

* **always refused**, whatever the configuration says: unspecified
  (``0.0.0.0/8``, ``::``), link-local (``169.254.0.0/16`` with the metadata
  services, ``fe80::/10``), multicast, reserved (``240.0.0.0/4``, broadcast). No
  receiver lives there on purpose; an entry of ``allow_networks`` inside one of
  them is a configuration error.
* **refused unless the receiver's ``allow_networks`` names them**: loopback
  (a relay on the same host) and every other non-global address — the private
  ranges ``10/8``, ``172.16/12``, ``192.168/16``, ``100.64/10`` (carrier-grade
  NAT), ``fc00::/7``, documentation and benchmark ranges (a town intranet).
* everything else (global unicast) is allowed.

IPv4 addresses wrapped in IPv6 (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``) are judged by the IPv4 address inside.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Final

from aiohttp import DefaultResolver
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "IPAddress",
    "IPNetwork",
    "ALWAYS_REFUSED",
    "DestinationRefused",
    "DestinationPolicy",
    "GuardedResolver",
    "refusal_reason",
    "never_allowed",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: Refused for every receiver; ``allow_networks`` cannot open them.
ALWAYS_REFUSED: Final[dict[str, tuple[IPNetwork, ...]]] = {
    # 0.0.0.0/8 "this network": on Linux a connect to 0.0.0.0 reaches the local host.
    "unspecified": _nets("0.0.0.0/8", "::/128"),
    "link_local": _nets("169.254.0.0/16", "fe80::/10"),
    "multicast": _nets("224.0.0.0/4", "ff00::/8"),
    "reserved": _nets("240.0.0.0/4"),  # includes 255.255.255.255
}
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationRefused(Exception):
    """A webhook destination resolved only to addresses the policy refuses.

    Not an ``OSError`` on purpose: aiohttp wraps those into connection errors,
    which the dispatcher retries; a refusal is final."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} -> {address}: {reason}")
        self.host = host
        self.address = address
        self.reason = reason


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address a v4-in-v6 address stands for, or ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def refusal_reason(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``ip`` may not be a webhook destination, or ``None`` if it may.

    Reasons: ``unspecified``, ``link_local``, ``multicast``, ``reserved`` (always),
    ``loopback``, ``private`` (unless inside one of ``allowed``)."""
    ip = _unwrap(ip)
    for reason, networks in ALWAYS_REFUSED.items():
        if any(ip in net for net in networks):
            return reason
    if any(ip in net for net in allowed):
        return None
    if ip.is_loopback:
        return "loopback"
    # is_global is False for every special-purpose range (RFC 6890 registries),
    # including 100.64/10, which is not "private" but is not reachable from outside either.
    if not ip.is_global or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "private"
    return None


def never_allowed(network: IPNetwork) -> str | None:
    """The always-refused class ``network`` lies in entirely (so naming it in
    ``allow_networks`` could never have an effect), or ``None``."""
    for reason, networks in ALWAYS_REFUSED.items():
        if any(network.version == net.version and network.subnet_of(net) for net in networks):  # type: ignore[arg-type]
            return reason
    return None


class DestinationPolicy:
    """One receiver's rule: the always-refused classes plus its own ``allow_networks``."""

    __slots__ = ("allowed",)

    def __init__(self, allowed: Iterable[IPNetwork] = ()) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(allowed)

    def reason(self, address: str) -> str | None:
        return refusal_reason(ipaddress.ip_address(address), self.allowed)

    def check_url(self, url: str) -> DestinationRefused | None:
        """The refusal for a URL whose host is an IP literal (names are checked
        when resolved), or ``None``."""
        host = URL(url).host or ""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None  # a name: GuardedResolver judges what it resolves to
        reason = refusal_reason(ip, self.allowed)
        return DestinationRefused(host, host, reason) if reason else None


class GuardedResolver(AbstractResolver):
    """A resolver that returns only the addresses ``policy`` allows.

    Each receiver gets its own connector with its own resolver: the connector's
    DNS cache is keyed by host and port only, so a connector shared by receivers
    with different ``allow_networks`` would let one receiver reuse addresses
    checked against another's rule."""

    def __init__(self, policy: DestinationPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not results:
            return results  # aiohttp reports "no address" as a network error (retried)
        allowed: list[ResolveResult] = []
        refused: tuple[str, str] | None = None
        for result in results:
            reason = self._policy.reason(result["host"])
            if reason is None:
                allowed.append(result)
            elif refused is None:
                refused = (result["host"], reason)
        if refused is not None and not allowed:
            raise DestinationRefused(host, *refused)
        return allowed

    async def close(self) -> None:
        await self._inner.close()
