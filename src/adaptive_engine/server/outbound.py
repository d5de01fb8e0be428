"""The one guard of every outbound call (webhooks, Slack, SMTP, reward servers and remote envs, external
models, the Ray address): a defence against server-side request forgery.

Whoever may register a URL chooses where the server connects. Policed, on every address a name resolves
to, at connect time (the connection then goes to that vetted address, so a name cannot resolve to
something else between check and connect):

* link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200) and
  addresses that are not destinations at all (0.0.0.0/8, ::, multicast, reserved): always refused. They
  hand out cloud credentials and never host a legitimate service.
* private and loopback addresses (RFC 1918, 127.0.0.0/8, ::1, fc00::/7, 100.64.0.0/10, ...): allowed only
  with ``ADAPTIVE_ALLOW_PRIVATE_NETWORKS`` (default true: a self-hosted machine runs its model servers,
  reward servers and receivers on loopback or its LAN). Deployments where people who register URLs should
  not reach the internal network set it to false.

URLs are checked when registered (INVALID_INPUT naming the reason, nothing stored): http(s) only, no
credentials, no line break, whitespace or control character anywhere (they split headers and logs), and an
address literal must be allowed. Names are resolved and checked when connecting: ``transport()`` for httpx,
``aiohttp_resolver()`` for aiohttp, ``resolve()`` for the rest (SMTP, websockets).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from adaptive_engine.server.errors import InvalidInput

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = tuple(
    ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
)
NOT_A_DESTINATION = tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/8", "::/128", "255.255.255.255/32"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_LENGTH = 2048
SETTING = "ADAPTIVE_ALLOW_PRIVATE_NETWORKS"


class AddressRefused(OSError):
    """The destination is not allowed; ``str()`` says which address and why. An OSError, so that HTTP
    clients treat it as a failed connection."""


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
        any(inner in net for net in NOT_A_DESTINATION)
        or inner.is_unspecified
        or inner.is_multicast
        or inner.is_reserved
    ):
        return "non-destination address (unspecified, broadcast, multicast or reserved)"
    if private and not allow_private:
        return f"private or loopback address, refused by {SETTING}=false"
    return None


def literal(host: str) -> IpAddress | None:
    """``host`` as an IP address when it is one written in standard notation (brackets allowed)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _bad_character(text: str) -> bool:
    """A line break, whitespace, or a control / invisible formatting character (Unicode categories C*, Z*)."""
    return any(c.isspace() or unicodedata.category(c)[0] in "CZ" for c in text)


def _host_ok(host: str) -> bool:
    """A DNS name (letters of any script, digits, '-', '_', '.'), a dotted-quad IPv4 address or a bracketed IPv6
    one. Digits and dots in any other shape (``2852039166``, ``127.1``, ``0177.0.0.1``) are other notations of
    an IPv4 address: aiohttp takes them for addresses and connects without asking the resolver, so they are
    refused here rather than checked there."""
    if host.startswith("["):
        return host.endswith("]") and literal(host) is not None and "%" not in host
    if host.replace(".", "").isdigit():
        return literal(host) is not None
    return bool(host) and all(c.isalnum() or c in "-_." for c in host)


def url_problem(url: str, allow_private: bool, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why ``url`` may not be called (None when it may, as far as can be told before resolving it)."""
    if not isinstance(url, str) or not url:
        return "it is empty"
    if len(url) > MAX_URL_LENGTH:
        return f"it is longer than {MAX_URL_LENGTH} characters"
    if _bad_character(url):
        return "it contains a line break, whitespace or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "it is not a valid URL (malformed host or port)"
    if parts.scheme.lower() not in schemes:
        return f"its scheme must be {' or '.join(schemes)}"
    if parts.username is not None or parts.password is not None:
        return "it must not carry credentials (user:password@)"
    host = parts.netloc.rpartition("@")[2]
    host = host[: host.rindex("]") + 1] if host.startswith("[") and "]" in host else host.split(":", 1)[0]
    if not parts.hostname or not _host_ok(host):
        return "it has no valid host"
    address = literal(parts.hostname)
    if address is not None:
        reason = refusal(address, allow_private)
        if reason:
            return f"{parts.hostname} is a {reason}"
    return None


def _shown(url: object) -> str:
    """The URL as an error message may quote it: escaped (no raw line break) and bounded."""
    text = str(url).encode("unicode_escape").decode("ascii")
    return text if len(text) <= 200 else text[:200] + "..."


@dataclass(frozen=True)
class OutboundGuard:
    """The deployment's outbound policy (``ADAPTIVE_ALLOW_PRIVATE_NETWORKS``); one per server, on
    ``Platform.outbound``."""

    allow_private: bool = True

    def check_url(self, url: str, what: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        """``url`` unchanged when it may be registered, else INVALID_INPUT naming ``what`` and the reason."""
        problem = url_problem(url, self.allow_private, schemes)
        if problem:
            raise InvalidInput(f"{what} '{_shown(url)}' is refused: {problem}")
        return url

    def check_host(self, host: str, what: str) -> str:
        """A bare host name (SMTP): the same character and literal-address rules as a URL's host."""
        address = literal(host)
        if _bad_character(host) or (address is None and not _host_ok(host)):
            raise InvalidInput(f"{what} '{_shown(host)}' is refused: it is not a valid host name")
        reason = refusal(address, self.allow_private) if address is not None else None
        if reason:
            raise InvalidInput(f"{what} '{_shown(host)}' is refused: it is a {reason}")
        return host

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, every one of them allowed (else AddressRefused), in resolver
        order. Every address is checked, not only the first: a name with one public and one internal record
        is refused. Other notations of an address (``2852039166``, ``0x7f000001``) resolve here and are
        caught too."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve '{host}': {exc.strerror}") from None
        addresses: list[str] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            text = self.vet(host, str(sockaddr[0]))
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise OSError(f"cannot resolve '{host}'")
        return addresses

    def vet(self, host: str, address: str) -> str:
        """``address`` (what ``host`` resolved to, zone id dropped) if it is allowed, else AddressRefused."""
        text = address.split("%", 1)[0]
        reason = refusal(ipaddress.ip_address(text), self.allow_private)
        if reason:
            raise AddressRefused(f"'{host}' resolves to {text}: {reason}")
        return text

    def transport(self, limits: httpx.Limits | None = None) -> httpx.AsyncBaseTransport:
        """An httpx transport whose every connection goes to an address vetted when connecting (the URL's
        host stays the Host header and the TLS server name). A refused address raises AddressRefused."""
        return _GuardedTransport(self, limits or httpx.Limits())

    def aiohttp_resolver(self) -> AbstractResolver:
        """An aiohttp resolver that refuses names resolving to a refused address. aiohttp does not resolve
        address literals: check those with ``check_url`` when the URL is registered or used."""
        return _GuardedResolver(self)


class _GuardedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to vetted addresses (the next one when one fails)."""

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._guard.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving '{host}' timed out") from None
        except AddressRefused:
            raise
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        for index, address in enumerate(addresses):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError:
                if index + 1 == len(addresses):
                    raise
        raise httpcore.ConnectError(f"cannot connect to '{host}'")  # pragma: no cover - addresses is never empty

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: OutboundGuard, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx takes no network backend: the pool is made again with ours (same settings as httpx's).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedNetwork(guard),
        )


class _GuardedResolver(AbstractResolver):
    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self._guard.vet(host, result["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()
