"""The package fetcher's bounds and cache, below the PR workflow."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from app.workflow.archive import ArchiveRefused, unpack_matching
from app.workflow.packages import FetchedPackage, PackageCache
from rules.dbt_deps import wanted_archive_files


def archive(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    buffer.seek(0)
    return buffer


def test_a_package_archive_keeps_only_its_project_and_sql_and_never_follows_links() -> None:
    link = tarfile.TarInfo("top/macros/evil.sql")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    stream = archive(
        [
            ("top/dbt_project.yml", b"name: p\n"),
            ("top/macros/a.sql", b"{% macro a() %}1{% endmacro %}"),
            ("top/README.md", b"hello"),
            ("top/../../escape.sql", b"nope"),
            ("/abs.sql", b"nope"),
            link,
        ]
    )
    files = unpack_matching(stream, wanted_archive_files, max_file_bytes=1024, max_total_bytes=4096)
    assert files == {"dbt_project.yml": b"name: p\n", "macros/a.sql": b"{% macro a() %}1{% endmacro %}"}


def test_a_package_archive_over_the_kept_bytes_bound_is_refused() -> None:
    stream = archive([(f"top/macros/m{i}.sql", b"x" * 900) for i in range(10)])
    with pytest.raises(ArchiveRefused, match="over"):
        unpack_matching(stream, wanted_archive_files, max_file_bytes=1024, max_total_bytes=4096)


def test_a_package_archive_that_is_not_a_tarball_is_refused() -> None:
    with pytest.raises(ArchiveRefused, match="not a readable gzipped tarball"):
        unpack_matching(io.BytesIO(b"<html>502</html>"), wanted_archive_files, max_file_bytes=10, max_total_bytes=10)


def test_a_fetched_package_survives_a_restart_in_the_disk_cache(tmp_path: Path) -> None:
    key = ("hub", "acme-labs/acme_utils", "0.3.1")
    package = FetchedPackage("acme_utils", "0.3.1", {"keys.sql": "{% macro k() %}1{% endmacro %}"})
    PackageCache(str(tmp_path / "packages")).put(key, package)
    assert PackageCache(str(tmp_path / "packages")).get(key) == package
    assert PackageCache(str(tmp_path / "other")).get(key) is None


def test_a_corrupt_cache_entry_is_fetched_again_not_trusted(tmp_path: Path) -> None:
    key = ("hub", "acme-labs/acme_utils", "0.3.1")
    cache = PackageCache(str(tmp_path))
    cache.put(key, FetchedPackage("acme_utils", "0.3.1", {}))
    [entry] = list(tmp_path.glob("*.json"))
    entry.write_text("{not json")
    assert PackageCache(str(tmp_path)).get(key) is None


def test_a_package_archive_that_unpacks_past_its_bound_is_refused_even_in_files_not_kept() -> None:
    stream = archive([("top/dbt_project.yml", b"name: p\n"), ("top/docs/huge.md", b"\0" * 300_000)])
    with pytest.raises(ArchiveRefused, match="unpacks to over"):
        unpack_matching(
            stream, wanted_archive_files, max_file_bytes=1024, max_total_bytes=4096, max_unpacked_bytes=100_000
        )
