"""How the command fails: one line on stderr and status 1; the traceback only with ``--debug``."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Literal, NoReturn

import typer


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def describe(error: BaseException) -> str:
    """One line: the error's own message when it has one (API errors, domain errors), else its type and text."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    if not getattr(error, "message", None) and type(error).__module__ == "builtins" and str(error):
        message = f"{type(error).__name__}: {error}"
    lines = [line for line in str(message).splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    return first + (" (more with --debug)" if len(lines) > 1 else "")


class ErrorHandling:
    """Around the whole command: what escapes a command becomes ``error: <one line>`` and exit status 1."""

    # Set by the --debug option (the command line is parsed inside this context).
    debug = False

    def __enter__(self) -> ErrorHandling:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> Literal[False]:
        if error is None or isinstance(error, (SystemExit, typer.Exit)):
            return False
        if isinstance(error, KeyboardInterrupt):
            sys.exit(130)
        if self.debug or not isinstance(error, Exception):
            return False
        print(f"error: {describe(error)}", file=sys.stderr)
        sys.exit(1)
