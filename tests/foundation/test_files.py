"""server/files.py: an upload copied under a size limit, a zip archive unpacked under limits; each refusal a
typed 4xx that leaves nothing behind."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adaptive_engine.server.errors import InvalidInput, PayloadTooLarge
from adaptive_engine.server.files import ZipLimits, copy_chunks, unzip

LIMITS = ZipLimits(max_entries=10, max_bytes=1000)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_copy_chunks_writes_them_and_counts(tmp_path: Path) -> None:
    # given an upload in three chunks under the limit
    # when it is copied
    target = tmp_path / "upload"
    written = await copy_chunks(_chunks(b"abc", b"", b"defg"), target, 7, "too large")
    # then every byte is on disk, counted
    assert written == 7 and target.read_bytes() == b"abcdefg"


async def test_copy_chunks_refuses_past_the_limit_and_removes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "upload"
    with pytest.raises(PayloadTooLarge, match="dataset too large") as caught:
        await copy_chunks(_chunks(b"abcd", b"efgh"), target, 7, "dataset too large")
    assert caught.value.http_status == 413
    assert not target.exists()


def test_unzip_unpacks_folders_and_files(tmp_path: Path) -> None:
    data = _zip({"main.py": b"print(1)\n", "pkg/": b"", "pkg/util.py": b"x = 1\n", "./top.txt": b"t"})
    unzip(io.BytesIO(data), tmp_path / "out", LIMITS, what="the archive")
    out = tmp_path / "out"
    assert (out / "main.py").read_bytes() == b"print(1)\n"
    assert (out / "pkg" / "util.py").read_bytes() == b"x = 1\n"
    assert (out / "top.txt").read_bytes() == b"t"


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt", "C:/escape.txt", "a\\..\\b"]
)
def test_unzip_refuses_a_path_that_leaves_the_folder(tmp_path: Path, name: str) -> None:
    data = _zip({"ok.txt": b"fine", name: b"evil"})
    with pytest.raises(InvalidInput, match="unsafe path in the archive") as caught:
        unzip(io.BytesIO(data), tmp_path / "out", LIMITS, what="the archive")
    assert caught.value.http_status == 400
    # refused before anything is written
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()


def test_unzip_refuses_a_zip_bomb_by_its_declared_size(tmp_path: Path) -> None:
    # given a small archive (a few hundred bytes) that unpacks to 10 MB of zeros
    data = _zip({"bomb.bin": b"\0" * 10_000_000})
    assert len(data) < 20_000
    with pytest.raises(PayloadTooLarge, match="unpacks to more than 1000 bytes"):
        unzip(io.BytesIO(data), tmp_path / "out", LIMITS, what="the archive")
    assert not (tmp_path / "out").exists()


def test_unzip_refuses_an_archive_whose_headers_lie_about_the_size(tmp_path: Path) -> None:
    # given a stored (uncompressed) entry of 5000 bytes whose central directory claims 10
    data = bytearray(_zip({"big.bin": b"x" * 5000}, compression=zipfile.ZIP_STORED))
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size in the central directory
    # then only the claimed bytes are read, their checksum fails, and the partial output is gone
    with pytest.raises(InvalidInput, match="could not be unpacked: Bad CRC-32"):
        unzip(io.BytesIO(bytes(data)), tmp_path / "out", LIMITS, what="the archive")
    assert not (tmp_path / "out").exists()


def test_unzip_refuses_too_many_entries(tmp_path: Path) -> None:
    data = _zip({f"f{i}.txt": b"" for i in range(11)})
    with pytest.raises(PayloadTooLarge, match="more than 10 entries"):
        unzip(io.BytesIO(data), tmp_path / "out", LIMITS, what="the archive")


def test_unzip_refuses_a_symbolic_link(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidInput, match="symbolic link: link"):
        unzip(io.BytesIO(buffer.getvalue()), tmp_path / "out", LIMITS, what="the model archive")


def test_unzip_refuses_what_is_no_zip(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="the model archive is not a valid zip file"):
        unzip(io.BytesIO(b"PK\x03\x04 not really"), tmp_path / "out", LIMITS, what="the model archive")
