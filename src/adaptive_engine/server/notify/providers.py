"""Notification providers: how an integration's connection is validated, shown (secrets masked) and
used to deliver one message.

    webhook  HTTP POST (or PUT) of the JSON message, signed: X-Adaptive-Signature: sha256=HMAC(secret, "<ts>.<body>")
    slack    Slack incoming webhook: {"text": ...}
    smtp     email through an SMTP server (STARTTLS and login when the server offers them)
    github   a code source: stored, no notifications

Every connection goes to an address the outbound guard (server/outbound.py) vetted. A receiver's error answer
is read only as far as the server log needs; the delivery log records its status, never its body (the log
is read by the integration's team, and a body would make the sender a way to read internal services).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import smtplib
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from http import HTTPStatus
from typing import Any
from urllib.parse import urlparse

import httpx

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.outbound import AddressRefused, OutboundGuard

log = logging.getLogger("adaptive_engine.notify")

NOTIFICATION_CHANNEL = "NOTIFICATION_CHANNEL"
CODE_SOURCE = "CODE_SOURCE"
ALL_SCOPES = ["USER", "TEAM", "ORGANIZATION", "ADMIN"]
SIGNATURE_HEADER = "X-Adaptive-Signature"
MASK = "********"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers we set ourselves; a user header cannot override them.
RESERVED_HEADERS = {
    "content-type",
    "content-length",
    "host",
    SIGNATURE_HEADER.lower(),
    "x-adaptive-event",
    "x-adaptive-event-id",
    "x-adaptive-timestamp",
}


@dataclass(frozen=True)
class Provider:
    name: str
    description: str
    capabilities: tuple[str, ...]
    allowed_scopes: tuple[str, ...]


PROVIDERS: dict[str, Provider] = {
    "webhook": Provider(
        "webhook",
        "HTTP POST of each event as JSON, signed with HMAC-SHA256",
        (NOTIFICATION_CHANNEL,),
        tuple(ALL_SCOPES),
    ),
    "slack": Provider("slack", "Slack incoming webhook", (NOTIFICATION_CHANNEL,), tuple(ALL_SCOPES)),
    "smtp": Provider("smtp", "Email through an SMTP server", (NOTIFICATION_CHANNEL,), tuple(ALL_SCOPES)),
    "github": Provider("github", "GitHub repository (code source; no notifications)", (CODE_SOURCE,), ()),
}
ALIASES = {"email": "smtp"}


class DeliveryFailed(Exception):
    """One attempt failed. ``retryable`` False: trying again cannot help (e.g. HTTP 400, bad credentials)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def provider(name: str) -> Provider:
    found = PROVIDERS.get(ALIASES.get((name or "").lower(), (name or "").lower()))
    if found is None:
        raise InvalidInput(f"unknown provider '{name}': use one of {', '.join(PROVIDERS)}")
    return found


def validate_connection(
    provider_name: str,
    given: dict[str, Any],
    previous: dict[str, Any] | None = None,
    *,
    guard: OutboundGuard,
) -> dict[str, Any]:
    """The connection to store for ``provider_name`` (keys in snake_case). Secrets left out of an update
    keep their previous value. URLs and hosts go through the outbound ``guard``."""
    previous = previous or {}
    if provider_name == "webhook":
        method = str(given.get("method") or "POST").upper()
        if method not in ("POST", "PUT"):
            raise InvalidInput(f"webhook method '{method}' is not supported: use POST or PUT")
        headers = given.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidInput("webhook headers must be an object of strings")
        clashing = sorted(k for k in headers if k.lower() in RESERVED_HEADERS)
        if clashing:
            raise InvalidInput(f"webhook headers cannot set {', '.join(clashing)}")
        if len(headers) > 50:
            raise InvalidInput("webhook headers: at most 50")
        for key, value in headers.items():
            # Checked here so that a bad header is refused once, not failed on every delivery.
            if not HEADER_NAME.match(key) or len(key) > 256:
                raise InvalidInput(f"webhook header name '{key}' is not a valid HTTP header name")
            if len(value) > 8192 or any(c in value for c in "\r\n\0"):
                raise InvalidInput(f"webhook header '{key}' has a value with line breaks or over 8192 characters")
        secret = given.get("secret") or previous.get("secret") or new_secret()
        return {
            "url": guard.check_url(str(given.get("url") or ""), "webhook url"),
            "method": method,
            "headers": headers,
            "secret": str(secret),
        }
    if provider_name == "slack":
        return {
            "webhook_url": guard.check_url(str(given.get("webhook_url") or ""), "slack webhookUrl"),
            "bot_token": given.get("bot_token"),
        }
    if provider_name == "smtp":
        host = str(given.get("host") or "")
        if not host:
            raise InvalidInput("smtp host is required")
        guard.check_host(host, "smtp host")
        port_given: Any = given.get("port")  # a number or a numeric string; anything else is refused below
        try:
            port = int(port_given)
        except (TypeError, ValueError):
            raise InvalidInput("smtp port must be a number") from None
        if not 0 < port < 65536:
            raise InvalidInput(f"smtp port {port} is out of range")
        from_email = str(given.get("from_email") or "").strip()
        to_emails = [str(e).strip() for e in (given.get("to_emails") or [])]
        for address in [from_email, *to_emails]:
            if not EMAIL.match(address):
                raise InvalidInput(f"'{address}' is not a valid email address")
        if not to_emails:
            raise InvalidInput("smtp toEmails needs at least one address")
        password = given.get("password")
        return {
            "host": host,
            "port": port,
            "username": given.get("username") or "",
            "password": password if password is not None else previous.get("password", ""),
            "from_email": from_email,
            "to_emails": to_emails,
        }
    if provider_name == "github":
        if not given.get("api_token"):
            raise InvalidInput("github apiToken is required")
        return {"api_token": given["api_token"], "org": given.get("org"), "repo": given.get("repo")}
    raise InvalidInput(f"unknown provider '{provider_name}'")


def public_connection(provider_name: str, connection: dict[str, Any]) -> dict[str, Any]:
    """What the API shows: secrets masked or left out."""
    if provider_name == "webhook":
        return {
            "url": connection["url"],
            "method": connection["method"],
            "headers": {k: MASK for k in connection.get("headers", {})},
        }
    if provider_name == "slack":
        parsed = urlparse(connection["webhook_url"])
        return {
            "webhook_url": f"{parsed.scheme}://{parsed.netloc}/{MASK}",
            "bot_token": MASK if connection.get("bot_token") else None,
        }
    if provider_name == "smtp":
        return {k: connection[k] for k in ("host", "port", "username", "from_email", "to_emails")}
    if provider_name == "github":
        return {"api_token": MASK, "org": connection.get("org"), "repo": connection.get("repo")}
    return {}


def new_secret() -> str:
    """A webhook signing secret made by the server (when the caller sets none, or rotates it)."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def summary(message: dict[str, Any]) -> str:
    payload = message.get("payload") or {}
    details = ", ".join(f"{k}={v}" for k, v in _flat(payload).items())
    return f"[Adaptive] {message.get('topic')}" + (f": {details}" if details else "")


def _flat(payload: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass
class Limits:
    timeout_s: float
    max_body_bytes: int
    guard: OutboundGuard
    # Of a receiver's error answer only this much is read (for the server log); the rest is never downloaded.
    max_response_bytes: int = 4096


async def _addresses(host: str, port: int, limits: Limits) -> list[str]:
    try:
        return await limits.guard.resolve(host, port)
    except AddressRefused as refused:
        raise DeliveryFailed(f"refused: {refused}", retryable=False) from None
    except OSError as exc:
        raise DeliveryFailed(f"connection failed: {exc}"[:300]) from None


async def _read_some(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of the answer, undecoded (no decompression of a receiver's body)."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit].decode("utf-8", "replace")


async def _post(
    client: httpx.AsyncClient, method: str, url: str, body: bytes, headers: dict[str, str], limits: Limits
) -> None:
    """One request to ``url``; ``client``'s transport is the outbound guard's (vetted addresses only)."""
    try:
        async with client.stream(
            method, url, content=body, headers={**headers, "Accept-Encoding": "identity"}
        ) as response:
            if response.is_success:
                return
            excerpt = await _read_some(response, limits.max_response_bytes)
    except AddressRefused as refused:
        raise DeliveryFailed(f"refused: {refused}", retryable=False) from None
    except httpx.TimeoutException:
        raise DeliveryFailed(f"timed out after {limits.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"connection failed: {type(exc).__name__}") from None
    status = response.status_code
    log.info("receiver %s answered HTTP %s: %r", httpx.URL(url).host, status, excerpt[:500])
    retryable = status >= 500 or status in (408, 425, 429)
    raise DeliveryFailed(f"HTTP {status} {_phrase(status)}".rstrip(), retryable=retryable)


def _phrase(status: int) -> str:
    """Our name of ``status`` (not the receiver's reason text)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def deliver(
    provider_name: str, connection: dict[str, Any], message: dict[str, Any], client: httpx.AsyncClient, limits: Limits
) -> None:
    """Send ``message`` once; raise DeliveryFailed on failure."""
    if provider_name == "webhook":
        body = json.dumps(message, separators=(",", ":"), default=str).encode()
        if len(body) > limits.max_body_bytes:
            raise DeliveryFailed(
                f"message of {len(body)} bytes exceeds the limit of {limits.max_body_bytes}", retryable=False
            )
        timestamp = str(int(time.time()))
        headers = {
            **connection.get("headers", {}),
            "Content-Type": "application/json",
            "X-Adaptive-Event": str(message.get("topic")),
            "X-Adaptive-Event-Id": str(message.get("id")),
            "X-Adaptive-Timestamp": timestamp,
            SIGNATURE_HEADER: sign(connection["secret"], timestamp, body),
        }
        await _post(client, connection.get("method", "POST"), connection["url"], body, headers, limits)
    elif provider_name == "slack":
        text = summary(message)[: limits.max_body_bytes // 2]
        body = json.dumps({"text": text}).encode()
        await _post(client, "POST", connection["webhook_url"], body, {"Content-Type": "application/json"}, limits)
    elif provider_name == "smtp":
        address = (await _addresses(connection["host"], connection["port"], limits))[0]
        await asyncio.to_thread(_send_mail, connection, address, message, limits)
    else:
        raise DeliveryFailed(f"provider '{provider_name}' does not deliver notifications", retryable=False)


class _PinnedSMTP(smtplib.SMTP):
    """SMTP to the address the network guard vetted; the host name still names the server (EHLO, TLS)."""

    def __init__(self, address: str, *args: Any, **kwargs: Any) -> None:
        self._address = address
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


def _send_mail(connection: dict[str, Any], address: str, message: dict[str, Any], limits: Limits) -> None:
    mail = EmailMessage()
    mail["Subject"] = summary(message)[:200]
    mail["From"] = connection["from_email"]
    mail["To"] = ", ".join(connection["to_emails"])
    text = json.dumps(message, indent=2, default=str)
    if len(text) > limits.max_body_bytes:
        raise DeliveryFailed("message exceeds the size limit", retryable=False)
    mail.set_content(text)
    try:
        with _PinnedSMTP(address, connection["host"], connection["port"], timeout=limits.timeout_s) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            if connection.get("username") and smtp.has_extn("auth"):
                smtp.login(connection["username"], connection.get("password") or "")
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed(f"SMTP authentication failed: {exc.smtp_code}", retryable=False) from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryFailed("SMTP server refused every recipient", retryable=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP failed: {type(exc).__name__}: {exc}"[:300]) from None
