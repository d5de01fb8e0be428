"""Where outbound notifications may connect: a guard against server-side request forgery.

Whoever can create an integration chooses a URL (or SMTP host) that the server then connects to. Two kinds
of destination are policed, on every address the name resolves to at delivery time (the connection then
goes to that vetted address, so a name cannot resolve to something else between check and connect):

* link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200) and
  addresses that are not destinations at all (0.0.0.0/8, ::, multicast, reserved): always refused. They hand
  out cloud credentials and never host a legitimate receiver.
* private and loopback addresses (RFC 1918, 127.0.0.0/8, ::1, fc00::/7, 100.64.0.0/10, ...): allowed only
  with ``ADAPTIVE_NOTIFY_ALLOW_PRIVATE_NETWORKS`` (default true). The default deployment is one self-hosted
  machine whose integrations are made by its own operators, and receivers on the same host or LAN (a
  chat-ops relay, an internal alerting service) are the normal set-up there. Deployments where people who
  create integrations should not reach the internal network set it to false.

An address literal in a URL is checked when the integration is created or updated (INVALID_INPUT); names
are resolved and checked at delivery, where a refusal fails the delivery without retrying.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
)
NOT_A_DESTINATION = tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/8", "::/128", "255.255.255.255/32"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The destination is not allowed; ``str()`` says which address and why."""


def _embedded_v4(address: IpAddress) -> IpAddress:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IpAddress, allow_private: bool) -> str | None:
    """Why a connection to ``address`` is refused, or None when it is allowed."""
    inner = _embedded_v4(address)
    if any(inner in net for net in METADATA) or inner.is_link_local:
        return "link-local or cloud metadata address, never allowed"
    private = inner.is_loopback or not inner.is_global
    if not inner.is_loopback and (
        any(inner in net for net in NOT_A_DESTINATION) or inner.is_unspecified or inner.is_multicast or inner.is_reserved
    ):
        return "not a destination address"
    if private and not allow_private:
        return "private or loopback address, refused by ADAPTIVE_NOTIFY_ALLOW_PRIVATE_NETWORKS=false"
    return None


def literal(host: str) -> IpAddress | None:
    """``host`` as an IP address when it is one written in standard notation (brackets allowed)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def check_literal(host: str, allow_private: bool) -> str | None:
    """At create/update time: the reason to refuse ``host`` if it is an address literal that is refused."""
    address = literal(host)
    return refusal(address, allow_private) if address is not None else None


async def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses ``host`` resolves to, every one of them allowed (else AddressRefused), in resolver order.

    Every address is checked, not only the first: a name with one public and one internal record is
    refused. Names such as ``2852039166`` or ``0x7f000001`` (other notations of an IPv4 address) are
    resolved by the system resolver and caught here."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve '{host}': {exc.strerror}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        reason = refusal(ipaddress.ip_address(text), allow_private)
        if reason:
            raise AddressRefused(f"'{host}' resolves to {text}: {reason}")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise OSError(f"cannot resolve '{host}'")
    return addresses
