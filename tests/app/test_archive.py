"""Repository tarballs are hostile input: only wanted regular files whose bytes match their blob SHA
come out, and an archive past a bound, or not an archive at all, is refused."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from app.workflow import archive
from app.workflow.archive import ArchiveRefused, git_blob_sha, unpack

TOP = "acme-warehouse-abc1234"
MODEL = b"select 1 as id\n"


def build(entries: list[tuple[str, bytes | None, bytes]]) -> io.BytesIO:
    """A gzipped tarball of (name, type, content) entries; type None is a regular file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, content in entries:
            info = tarfile.TarInfo(name)
            if kind is None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type = kind
                info.linkname = content.decode()
                tar.addfile(info)
    buffer.seek(0)
    return buffer


def test_a_wanted_file_comes_out_under_its_repository_path_keyed_by_blob_sha() -> None:
    stream = build([(f"{TOP}/models/a.sql", None, MODEL), (f"{TOP}/README.md", None, b"hello")])
    found = unpack(stream, {"models/a.sql": git_blob_sha(MODEL)}, max_file_bytes=1024)
    assert dict(found.blobs) == {git_blob_sha(MODEL): MODEL}
    assert found.unsafe == ()


def test_content_that_does_not_hash_to_the_wanted_sha_is_not_kept() -> None:
    stream = build([(f"{TOP}/models/a.sql", None, b"select 'injected' as id\n")])
    found = unpack(stream, {"models/a.sql": git_blob_sha(MODEL)}, max_file_bytes=1024)
    assert dict(found.blobs) == {}


def test_climbing_and_absolute_paths_links_and_devices_are_skipped_and_named() -> None:
    stream = build(
        [
            (f"{TOP}/../models/a.sql", None, MODEL),
            ("/etc/models/a.sql", None, MODEL),
            (f"{TOP}/models/a.sql", tarfile.SYMTYPE, b"/etc/passwd"),
            (f"{TOP}/models/b.sql", tarfile.LNKTYPE, f"{TOP}/models/c.sql".encode()),
            (f"{TOP}/models/dev", tarfile.CHRTYPE, b""),
        ]
    )
    found = unpack(stream, {"models/a.sql": git_blob_sha(MODEL)}, max_file_bytes=1024)
    assert dict(found.blobs) == {}
    assert [why for _, why in found.unsafe] == [
        "absolute or climbing path",
        "absolute or climbing path",
        "link or device",
        "link or device",
        "link or device",
    ]


def test_a_file_over_the_size_limit_is_left_for_the_caller() -> None:
    stream = build([(f"{TOP}/models/a.sql", None, MODEL)])
    found = unpack(stream, {"models/a.sql": git_blob_sha(MODEL)}, max_file_bytes=len(MODEL) - 1)
    assert dict(found.blobs) == {}


def test_an_archive_with_too_many_entries_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)
    stream = build([(f"{TOP}/f{i}.sql", None, MODEL) for i in range(5)])
    with pytest.raises(ArchiveRefused, match="over 3 entries"):
        unpack(stream, {}, max_file_bytes=1024)


def test_an_archive_unpacking_past_the_byte_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 1000)
    stream = build([(f"{TOP}/zeros.bin", None, b"\0" * 5000)])
    with pytest.raises(ArchiveRefused, match="unpacks to over"):
        unpack(stream, {}, max_file_bytes=1024)


@pytest.mark.parametrize(
    "data",
    [b"not an archive at all", gzip.compress(b"gzip but not a tar" * 100, mtime=0), gzip.compress(b"x" * 600, mtime=0)[:40]],
    ids=["plain bytes", "gzip of no tar", "cut-off gzip"],
)
def test_bytes_that_are_not_a_gzipped_tarball_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(ArchiveRefused, match="not a readable gzipped tarball"):
        unpack(io.BytesIO(data), {"a.sql": git_blob_sha(MODEL)}, max_file_bytes=1024)
