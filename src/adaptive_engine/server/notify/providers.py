"""Notification providers: how an integration's connection is validated, shown (secrets masked) and
used to deliver one message.

    webhook  HTTP POST (or PUT) of the JSON message, signed: X-Adaptive-Signature: sha256=HMAC(secret, "<ts>.<body>")
    slack    Slack incoming webhook: {"text": ...}
    smtp     email through an SMTP server (STARTTLS and login when the server offers them)
    github   a code source: stored, no notifications

Every connection goes to an address the network guard (netguard.py) vetted; a receiver's answer is read only
as far as the error message needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import smtplib
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlparse

import httpx

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.notify import netguard

NOTIFICATION_CHANNEL = "NOTIFICATION_CHANNEL"
CODE_SOURCE = "CODE_SOURCE"
ALL_SCOPES = ["USER", "TEAM", "ORGANIZATION", "ADMIN"]
SIGNATURE_HEADER = "X-Adaptive-Signature"
MASK = "********"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers we set ourselves; a user header cannot override them.
RESERVED_HEADERS = {"content-type", "content-length", "host", SIGNATURE_HEADER.lower(), "x-adaptive-event",
                    "x-adaptive-event-id", "x-adaptive-timestamp"}


@dataclass(frozen=True)
class Provider:
    name: str
    description: str
    capabilities: tuple[str, ...]
    allowed_scopes: tuple[str, ...]


PROVIDERS: dict[str, Provider] = {
    "webhook": Provider("webhook", "HTTP POST of each event as JSON, signed with HMAC-SHA256", (NOTIFICATION_CHANNEL,), tuple(ALL_SCOPES)),
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


def _url(value: Any, what: str, allow_private: bool) -> str:
    text = str(value or "").strip()
    try:
        parsed = urlparse(text)
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidInput(f"{what} '{text}' is not a valid http(s) URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or len(text) > 2048:
        raise InvalidInput(f"{what} '{text}' is not a valid http(s) URL")
    if parsed.username is not None or parsed.password is not None:
        raise InvalidInput(f"{what} must not carry credentials in the URL: use headers (webhook) instead")
    reason = netguard.check_literal(parsed.hostname, allow_private)
    if reason:
        raise InvalidInput(f"{what} '{text}' is refused: {parsed.hostname} is a {reason}")
    return text


def validate_connection(
    provider_name: str, given: dict[str, Any], previous: dict[str, Any] | None = None, *, allow_private: bool = True
) -> dict[str, Any]:
    """The connection to store for ``provider_name`` (keys in snake_case). Secrets left out of an update
    keep their previous value. ``allow_private``: whether private and loopback address literals may be used
    (see notify/netguard.py)."""
    previous = previous or {}
    if provider_name == "webhook":
        method = str(given.get("method") or "POST").upper()
        if method not in ("POST", "PUT"):
            raise InvalidInput(f"webhook method '{method}' is not supported: use POST or PUT")
        headers = given.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
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
        return {"url": _url(given.get("url"), "webhook url", allow_private), "method": method, "headers": headers, "secret": str(secret)}
    if provider_name == "slack":
        return {"webhook_url": _url(given.get("webhook_url"), "slack webhookUrl", allow_private), "bot_token": given.get("bot_token")}
    if provider_name == "smtp":
        host = str(given.get("host") or "").strip()
        if not host:
            raise InvalidInput("smtp host is required")
        reason = netguard.check_literal(host, allow_private)
        if reason:
            raise InvalidInput(f"smtp host '{host}' is refused: it is a {reason}")
        try:
            port = int(given.get("port"))
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
            "host": host, "port": port, "username": given.get("username") or "",
            "password": password if password is not None else previous.get("password", ""),
            "from_email": from_email, "to_emails": to_emails,
        }
    if provider_name == "github":
        if not given.get("api_token"):
            raise InvalidInput("github apiToken is required")
        return {"api_token": given["api_token"], "org": given.get("org"), "repo": given.get("repo")}
    raise InvalidInput(f"unknown provider '{provider_name}'")


def public_connection(provider_name: str, connection: dict[str, Any]) -> dict[str, Any]:
    """What the API shows: secrets masked or left out."""
    if provider_name == "webhook":
        return {"url": connection["url"], "method": connection["method"],
                "headers": {k: MASK for k in connection.get("headers", {})}}
    if provider_name == "slack":
        parsed = urlparse(connection["webhook_url"])
        return {"webhook_url": f"{parsed.scheme}://{parsed.netloc}/{MASK}",
                "bot_token": MASK if connection.get("bot_token") else None}
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
    allow_private_networks: bool = True
    # Of a receiver's answer only this much is read (for the error message); the rest is never downloaded.
    max_response_bytes: int = 4096


async def _addresses(host: str, port: int, limits: Limits) -> list[str]:
    try:
        return await netguard.resolve(host, port, limits.allow_private_networks)
    except netguard.AddressRefused as refused:
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


async def _post(client: httpx.AsyncClient, method: str, url: str, body: bytes, headers: dict[str, str], limits: Limits) -> None:
    """One request to ``url``, connected to an address vetted by the network guard (the URL's host stays the
    Host header and the TLS server name, so certificates are checked against it)."""
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" and netguard.literal(target.host) is None else {}
    headers = {**headers, "Host": target.netloc.decode("ascii"), "Accept-Encoding": "identity"}
    addresses = await _addresses(target.host, port, limits)
    for index, address in enumerate(addresses):
        try:
            async with client.stream(method, target.copy_with(host=address), content=body, headers=headers,
                                     extensions=extensions) as response:
                if response.is_success:
                    return
                text = await _read_some(response, limits.max_response_bytes)
        except httpx.ConnectError as exc:
            if index + 1 < len(addresses):
                continue  # the name has other addresses: try the next one
            raise DeliveryFailed(f"connection failed: {type(exc).__name__}") from None
        except httpx.TimeoutException:
            raise DeliveryFailed(f"timed out after {limits.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"connection failed: {type(exc).__name__}") from None
        retryable = response.status_code >= 500 or response.status_code in (408, 425, 429)
        raise DeliveryFailed(f"HTTP {response.status_code}: {text[:200]}", retryable=retryable)


async def deliver(provider_name: str, connection: dict[str, Any], message: dict[str, Any], client: httpx.AsyncClient, limits: Limits) -> None:
    """Send ``message`` once; raise DeliveryFailed on failure."""
    if provider_name == "webhook":
        body = json.dumps(message, separators=(",", ":"), default=str).encode()
        if len(body) > limits.max_body_bytes:
            raise DeliveryFailed(f"message of {len(body)} bytes exceeds the limit of {limits.max_body_bytes}", retryable=False)
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
