"""Blobs out of a repository tarball, treated as hostile input.

Why a tarball: GitHub serves a whole commit as one archive for one API call, where fetching the
files one by one costs a call per file (a cold 1,000-model project: over a thousand calls, a fifth
of an installation's hourly budget). The archive is written by whoever controls the repository,
so it is read as a stream with bounds on members and unpacked bytes, nothing is ever written to
disk by name, and only regular files the engine asked for are kept, each only when its content
hashes to the blob SHA the git tree names: an archive cannot put anything in the blob cache that
the blobs API would not have returned.
"""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
"""Compressed size Tessera downloads at most; past it the files are fetched one by one."""
MAX_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024
"""Uncompressed bytes read through at most (a gzip bomb stops here)."""
MAX_MEMBERS = 500_000
"""Archive entries read at most."""


class ArchiveRefused(Exception):
    """The archive broke a bound or is not a tarball; the caller fetches single files instead."""


@dataclass(frozen=True)
class Unpacked:
    """What an archive gave: blob bytes by SHA, and entries skipped as unsafe (name, why)."""

    blobs: Mapping[str, bytes]
    unsafe: tuple[tuple[str, str], ...]


def git_blob_sha(content: bytes) -> str:
    """The SHA git gives a blob (the key the trees, the blobs API and the cache use)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def unpack(stream: BinaryIO, wanted: Mapping[str, str], *, max_file_bytes: int) -> Unpacked:
    """The wanted files (path → blob SHA) found in a gzipped tarball read front to back.

    GitHub puts everything under one top folder (``owner-repo-sha/``); it is dropped. Entries
    with an absolute path or ``..``, links, devices and other non-files are skipped (and named);
    a file is kept only when its bytes hash to the SHA wanted for its path."""
    blobs: dict[str, bytes] = {}
    unsafe: list[tuple[str, str]] = []
    for path, member, archive in _safe_files(stream, unsafe):
        sha = wanted.get(path)
        if sha is None or sha in blobs or member.size > max_file_bytes:
            continue
        handle = archive.extractfile(member)
        data = handle.read(max_file_bytes + 1) if handle is not None else b""
        if git_blob_sha(data) == sha:
            blobs[sha] = data
    return Unpacked(blobs, tuple(unsafe))


def unpack_matching(
    stream: BinaryIO,
    keep: Callable[[str], bool],
    *,
    max_file_bytes: int,
    max_total_bytes: int,
    max_unpacked_bytes: int | None = None,
) -> dict[str, bytes]:
    """Every regular file of a gzipped tarball whose inner path ``keep`` accepts (path → bytes),
    under the same bounds as :func:`unpack` (and ``max_unpacked_bytes`` read through); files over
    ``max_file_bytes`` are left out, and more than ``max_total_bytes`` kept in all refuses the
    archive. For archives Tessera has no tree for (a dbt package at a version): unsafe entries are
    skipped, never followed. ``stream`` must be seekable (a downloaded file): read as a seekable
    gzip, a very compressible archive takes a sixth of the time it takes as a stream."""
    files: dict[str, bytes] = {}
    kept = 0
    for path, member, archive in _safe_files(stream, [], mode="r:gz", max_unpacked=max_unpacked_bytes):
        if member.size > max_file_bytes or not keep(path):
            continue
        kept += member.size
        if kept > max_total_bytes:
            raise ArchiveRefused(f"the files Tessera reads from the archive are over {max_total_bytes / 1_048_576:g} MB")
        handle = archive.extractfile(member)
        files[path] = handle.read(max_file_bytes + 1) if handle is not None else b""
    return files


def _safe_files(
    stream: BinaryIO, unsafe: list[tuple[str, str]], *, mode: str = "r|gz", max_unpacked: int | None = None
) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """The regular files of a gzipped tarball read front to back, each with its inner path (top
    folder dropped), within the member and unpacked-size bounds (``max_unpacked`` None:
    :data:`MAX_UNPACKED_BYTES`). Absolute or climbing paths, links and devices are named in
    ``unsafe`` and skipped."""
    max_unpacked = MAX_UNPACKED_BYTES if max_unpacked is None else max_unpacked
    members = unpacked = 0
    try:
        with tarfile.open(fileobj=stream, mode=mode) as archive:
            for member in archive:
                members += 1
                unpacked += max(member.size, 0)
                if members > MAX_MEMBERS:
                    raise ArchiveRefused(f"the archive has over {MAX_MEMBERS:,} entries")
                if unpacked > max_unpacked:
                    raise ArchiveRefused(f"the archive unpacks to over {max_unpacked / 1024**2:g} MB")
                path = _inner_path(member.name)
                if path is None:
                    unsafe.append((member.name, "absolute or climbing path"))
                    continue
                if not member.isfile():
                    if member.issym() or member.islnk() or member.isdev() or member.isfifo():
                        unsafe.append((member.name, "link or device"))
                    continue
                yield path, member, archive
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ArchiveRefused(f"not a readable gzipped tarball: {exc}") from exc


def _inner_path(name: str) -> str | None:
    """The repository path of an archive entry (top folder dropped); None when unsafe."""
    if name.startswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if any(part == ".." for part in parts):
        return None
    return "/".join(parts[1:])
