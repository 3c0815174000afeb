"""Where the engine reads a repository's files from, at one commit.

The engine never touches git, disk or GitHub itself: ``app`` hands it a :class:`FileSource`
(a local git checkout for ``tessera check``, GitHub's trees and blobs for a pull request). Files are
read lazily, so a source backed by the network fetches only what the analysis needs, and
``blob_id`` (git's blob SHA where known) lets parse results be cached by content.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Protocol

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
"""Where GitHub looks for CODEOWNERS, in its order."""


class FileSource(Protocol):
    """A read-only view of a repository at one commit."""

    def paths(self) -> Iterable[str]:
        """Every file path at this commit, repository-relative, ``/``-separated."""
        ...

    def read(self, path: str) -> str | None:
        """The file's text, or None when absent (or not text)."""
        ...

    def blob_id(self, path: str) -> str | None:
        """A content id (git blob SHA) for caching, or None when absent."""
        ...


def git_blob_sha(text: str) -> str:
    """The SHA git gives a blob with this content (so in-memory sources cache like git ones)."""
    data = text.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class DictSource:
    """A source over an in-memory mapping of path to text (tests, API uploads)."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self._files = dict(files)

    def paths(self) -> Iterable[str]:
        return sorted(self._files)

    def read(self, path: str) -> str | None:
        return self._files.get(path)

    def blob_id(self, path: str) -> str | None:
        text = self._files.get(path)
        return None if text is None else git_blob_sha(text)


def glob_match(path: str, pattern: str) -> bool:
    """``.tessera.yml`` glob semantics: ``**`` spans folders, ``*`` stays within one."""
    return _compile(pattern)(path)


_GLOB_CACHE: dict[str, object] = {}


def _compile(pattern: str):  # type: ignore[no-untyped-def]

    cached = _GLOB_CACHE.get(pattern)
    if cached is not None:
        return cached
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    regex = re.compile("".join(out) + r"\Z")
    _GLOB_CACHE[pattern] = regex.match
    return regex.match


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_match(path, p) or fnmatchcase(path, p) for p in patterns)
