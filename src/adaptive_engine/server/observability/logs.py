"""Logs: plain text for a terminal (the default; a request's lines start with ``[<request id>]``) or one JSON
object per line (``ADAPTIVE_LOG_FORMAT=json``), each carrying the id of the request it was written for.

The request id comes from the caller's ``X-Request-ID`` header when it is a sane token, else is made here; it
goes back in the answer's ``X-Request-ID`` and into every record logged while the request runs (a context
variable, read by :class:`RequestIdFilter`). In JSON mode the access log is ours (``adaptive_engine.access``:
method, path, status, duration, request id), written by the HTTP middleware; uvicorn's own is off.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from uvicorn.logging import AccessFormatter, DefaultFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

ACCESS_LOGGER = "adaptive_engine.access"
REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept when it is a short token (a UUID, a trace id, ...); anything else is replaced, so
# a header cannot inject text into log lines.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
# Attributes every LogRecord has: what is not among them was passed with ``extra=`` and goes into the JSON.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


# Ids made here: a random prefix per process and a counter (32 hex digits, unique without a UUID's cost of
# reading the system's randomness on each request).
_PREFIX = os.urandom(8).hex()
_counter = itertools.count(1)


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{_PREFIX}{next(_counter):016x}"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (``record.request_id``; None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request id, the record's
    ``extra`` fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "request_id" and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def json_log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server process in JSON mode (uvicorn's ``log_config``): our
    loggers and uvicorn's, one JSON object per line on stderr, access lines on stdout. (Text mode keeps
    uvicorn's own configuration.)"""
    level = level.upper()
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "json",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler, "access": {**handler, "stream": "ext://sys.stdout"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours replaces it
            ACCESS_LOGGER: {"handlers": ["access"], "level": "INFO", "propagate": False},
            "adaptive_engine": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


class TextFormatter(DefaultFormatter):
    """uvicorn's terminal format, with ``[<request id>]`` before the message of a record written for a request."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.request_tag = _tag(record)
        return super().formatMessage(record)


class TextAccessFormatter(AccessFormatter):
    """uvicorn's access line, with the request's id before it."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.request_tag = _tag(record)
        return super().formatMessage(record)


def _tag(record: logging.LogRecord) -> str:
    rid = getattr(record, "request_id", None) or request_id.get()
    return f"[{rid}] " if rid else ""


def text_log_config(level: str) -> dict[str, Any]:
    """The ``dictConfig`` of text mode (the default): uvicorn's layout, every line of a request tagged with its
    id, our loggers at the server's level."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {
            "default": {"()": f"{__name__}.TextFormatter", "fmt": "%(levelprefix)s %(request_tag)s%(message)s"},
            "access": {
                "()": f"{__name__}.TextAccessFormatter",
                "fmt": '%(levelprefix)s %(request_tag)s%(client_addr)s - "%(request_line)s" %(status_code)s',
            },
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            },
            "access": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "access",
                "filters": ["request_id"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "adaptive_engine": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def announce(message: str, *, json_format: bool) -> None:
    """What ``serve`` tells its operator (its URL, where the admin key is, "ready"): a plain line for a terminal,
    or, with ADAPTIVE_LOG_FORMAT=json, a record like every other line of the process (stdout stays the access
    log's)."""
    if json_format:
        logging.getLogger("adaptive_engine.serve").info(message)
    else:
        print(message, flush=True)
