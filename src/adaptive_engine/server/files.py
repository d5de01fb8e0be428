"""Files that callers send: an upload copied to disk under a size limit, a zip archive unpacked under limits.
Each refusal is a typed 4xx (PayloadTooLarge, InvalidInput) that names what was wrong, raised before the
limit is passed on disk."""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from adaptive_engine.server.errors import InvalidInput, PayloadTooLarge

COPY_CHUNK_BYTES = 1 << 20


async def copy_chunks(chunks: AsyncIterator[bytes], path: Path, max_bytes: int, too_large: str) -> int:
    """Write ``chunks`` to ``path`` and return how many bytes they held; refused with PayloadTooLarge
    (``too_large``) as soon as they pass ``max_bytes``. The partial file is removed on any failure."""
    written = 0
    try:
        with open(path, "wb") as out:
            async for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise PayloadTooLarge(too_large)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return written


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_bytes: int  # unpacked, all entries together


# A symbolic link in a zip made on Unix: its mode in the high 16 bits of the external attributes.
def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """The entry's path parts, or None when the name could land outside the folder it is unpacked into."""
    if "\\" in name or "\x00" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return tuple(p for p in path.parts if p != ".")


def unzip(source: Path | IO[bytes], into: Path, limits: ZipLimits, *, what: str) -> None:
    """Unpack the zip archive ``source`` into the folder ``into`` (created). Refused before anything is
    written: not a zip, more than ``limits.max_entries`` entries, declared sizes over ``limits.max_bytes``, an
    entry whose path leaves the folder (absolute, ``..``, a drive or a backslash), a symbolic link. While
    unpacking the bytes written are counted too, so an archive whose headers lie stops at the limit. ``what``
    names the archive in the errors ("the model archive"). On a failure while unpacking, ``into`` is removed."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise InvalidInput(f"{what} is not a valid zip file") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_entries:
            raise PayloadTooLarge(f"{what} holds more than {limits.max_entries} entries")
        declared = 0
        planned: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        for info in entries:
            parts = _safe_parts(info.filename)
            if parts is None:
                raise InvalidInput(f"unsafe path in {what}: {info.filename}")
            if _is_symlink(info):
                raise InvalidInput(f"{what} holds a symbolic link: {info.filename}")
            declared += info.file_size
            if declared > limits.max_bytes:
                raise PayloadTooLarge(f"{what} unpacks to more than {limits.max_bytes} bytes")
            planned.append((info, parts))
        into.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            for info, parts in planned:
                if not parts:
                    continue
                target = into.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(COPY_CHUNK_BYTES):
                        written += len(chunk)
                        if written > limits.max_bytes:
                            raise PayloadTooLarge(f"{what} unpacks to more than {limits.max_bytes} bytes")
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            # A damaged entry, an unknown compression or an encrypted entry.
            shutil.rmtree(into, ignore_errors=True)
            raise InvalidInput(f"{what} could not be unpacked: {exc}") from None
        except BaseException:
            shutil.rmtree(into, ignore_errors=True)
            raise
