"""One request core for both clients: request building, response/error mapping and retry policy are
shared; only the act of sending differs (httpx.Client vs httpx.AsyncClient)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any
from urllib.parse import urlparse

import httpx

from adaptive_engine.sdk._requests import GraphQL, Request, Rest, Sleep, Stream
from adaptive_engine.sdk.errors import APIConnectionError, APIError, APITimeoutError, error_for

GRAPHQL_PATH = "/api/graphql"
REST_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def validate_base_url(base_url: str) -> str:
    if not base_url:
        raise ValueError("base_url must be provided")
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"base_url '{base_url}' is invalid: expected a URL like https://adaptive.example.com")
    return base_url.rstrip("/")


def build(request: GraphQL | Rest | Stream) -> dict[str, Any]:
    """httpx.request keyword arguments for a request."""
    if isinstance(request, GraphQL):
        if request.files:
            variables = {**request.variables, **{name: None for name in request.files}}
            operations = json.dumps({"query": request.query, "variables": variables})
            mapping = json.dumps({str(i): [f"variables.{name}"] for i, name in enumerate(request.files)})
            files = {str(i): spec for i, spec in enumerate(request.files.values())}
            return {
                "method": "POST",
                "url": GRAPHQL_PATH,
                "data": {"operations": operations, "map": mapping},
                "files": files,
            }
        return {"method": "POST", "url": GRAPHQL_PATH, "json": {"query": request.query, "variables": request.variables}}
    kwargs: dict[str, Any] = {"method": request.method, "url": REST_PREFIX + request.path}
    if request.json is not None:
        kwargs["json"] = request.json
    if isinstance(request, Rest) and request.params:
        kwargs["params"] = {k: v for k, v in request.params.items() if v is not None}
    if isinstance(request, Rest) and request.content is not None:
        kwargs["content"] = request.content
    if isinstance(request, Rest) and request.headers:
        kwargs["headers"] = request.headers
    return kwargs


def _error_from_body(status: int, body: Any, fallback: str) -> APIError:
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            err = body["error"]
            return error_for(str(err.get("message") or fallback), status_code=status, code=err.get("code"), body=body)
        if body.get("errors"):
            first = body["errors"][0]
            code = (first.get("extensions") or {}).get("code")
            return error_for(str(first.get("message") or fallback), status_code=status, code=code, body=body)
        if "detail" in body:
            return error_for(str(body["detail"]), status_code=status, code=None, body=body)
    return error_for(fallback, status_code=status, code=None, body=body)


def parse_response(request: GraphQL | Rest, response: httpx.Response) -> Any:
    if isinstance(request, Rest) and request.raw and response.is_success:
        return response.content
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success:
        raise _error_from_body(response.status_code, body, f"HTTP {response.status_code}: {response.text[:200]}")
    if isinstance(request, GraphQL):
        if not isinstance(body, dict):
            raise error_for("malformed GraphQL response", status_code=response.status_code, code="INTERNAL")
        if body.get("errors"):
            raise _error_from_body(response.status_code, body, "GraphQL error")
        return body.get("data")
    return body


_DONE = object()


def sse_payload(line: str) -> Any:
    """The JSON payload of an SSE ``data:`` line; None for other lines, _DONE at ``[DONE]``."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    return json.loads(data) if data else None


class RetryPolicy:
    def __init__(self, max_retries: int = 2, base_delay: float = 0.5, max_delay: float = 8.0) -> None:
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay

    def delay(self, attempt: int, error: Exception) -> float | None:
        """Seconds to wait before retrying after ``error``, or None to give up."""
        if attempt >= self.max_retries:
            return None
        retry_after = None
        if isinstance(error, APIError):
            if error.status_code not in RETRY_STATUSES:
                return None
            headers = getattr(error, "headers", None) or {}
            retry_after = headers.get("retry-after")
        elif not isinstance(error, APIConnectionError):
            return None
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                wait = None
            if wait is not None:
                # A limit that frees up later than we are willing to wait: the caller decides (RateLimitError).
                return wait if wait <= self.max_delay else None
        # Exponential backoff with full jitter.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def _connection_error(exc: httpx.HTTPError) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out: {exc}")
    return APIConnectionError(f"could not reach the server: {exc}")


def _attach_headers(error: Exception, response: httpx.Response) -> Exception:
    if isinstance(error, APIError):
        error.headers = dict(response.headers)
    return error


class SyncTransport:
    def __init__(self, http: httpx.Client, retry: RetryPolicy) -> None:
        self.http = http
        self.retry = retry

    def send(self, request: Request) -> Any:
        if isinstance(request, Sleep):
            time.sleep(request.seconds)
            return None
        if isinstance(request, Stream):
            return self._stream(request)
        attempt = 0
        while True:
            try:
                try:
                    response = self.http.request(**build(request))
                except httpx.HTTPError as exc:
                    raise _connection_error(exc) from exc
                try:
                    return parse_response(request, response)
                except APIError as error:
                    raise _attach_headers(error, response) from None
            except (APIError, APIConnectionError) as error:
                wait = self.retry.delay(attempt, error) if request.idempotent else None
                if wait is None:
                    raise
                time.sleep(wait)
                attempt += 1

    def _stream(self, request: Stream) -> Iterator[Any]:
        try:
            with self.http.stream(**build(request)) as response:
                if not response.is_success:
                    response.read()
                    parse_response(Rest(request.method, request.path), response)
                for line in response.iter_lines():
                    payload = sse_payload(line)
                    if payload is _DONE:
                        return
                    if payload is not None:
                        yield request.parse(payload)
        except httpx.HTTPError as exc:
            raise _connection_error(exc) from exc

    def run(self, operation: Generator[Request, Any, Any]) -> Any:
        """Drive a resource operation to its end."""
        try:
            request = next(operation)
            while True:
                try:
                    result = self.send(request)
                except Exception as error:  # handed to the operation, which may handle it
                    request = operation.throw(error)
                else:
                    request = operation.send(result)
        except StopIteration as stop:
            return stop.value


class AsyncTransport:
    def __init__(self, http: httpx.AsyncClient, retry: RetryPolicy) -> None:
        self.http = http
        self.retry = retry

    async def send(self, request: Request) -> Any:
        if isinstance(request, Sleep):
            await asyncio.sleep(request.seconds)
            return None
        if isinstance(request, Stream):
            return self._stream(request)
        attempt = 0
        while True:
            try:
                try:
                    response = await self.http.request(**build(request))
                except httpx.HTTPError as exc:
                    raise _connection_error(exc) from exc
                try:
                    return parse_response(request, response)
                except APIError as error:
                    raise _attach_headers(error, response) from None
            except (APIError, APIConnectionError) as error:
                wait = self.retry.delay(attempt, error) if request.idempotent else None
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                attempt += 1

    async def _stream(self, request: Stream) -> AsyncIterator[Any]:
        try:
            async with self.http.stream(**build(request)) as response:
                if not response.is_success:
                    await response.aread()
                    parse_response(Rest(request.method, request.path), response)
                async for line in response.aiter_lines():
                    payload = sse_payload(line)
                    if payload is _DONE:
                        return
                    if payload is not None:
                        yield request.parse(payload)
        except httpx.HTTPError as exc:
            raise _connection_error(exc) from exc

    async def run(self, operation: Generator[Request, Any, Any]) -> Any:
        try:
            request = next(operation)
            while True:
                try:
                    result = await self.send(request)
                except Exception as error:
                    request = operation.throw(error)
                else:
                    request = operation.send(result)
        except StopIteration as stop:
            return stop.value
