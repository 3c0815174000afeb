"""Reading which packages a dbt project uses, as ``dbt deps`` does (no network here)."""

from __future__ import annotations

from rules.dbt_deps import (
    GitHubArchive,
    PackageSpec,
    github_archive,
    installed_paths,
    package_macros,
    pick_version,
    read_dependencies,
)


def reader(files: dict[str, str]):  # noqa: ANN201 - a tiny test helper
    return files.get


def test_the_lock_file_pins_what_packages_yml_leaves_as_a_range() -> None:
    files = {
        "analytics/packages.yml": (
            "packages:\n  - package: dbt-labs/dbt_utils\n    version: ['>=1.0.0', '<2.0.0']\n"
            "  - package: acme/extra\n    version: '>=0.2.0'\n"
            "  - local: ../shared/macros_pkg\n"
        ),
        "analytics/package-lock.yml": "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.1.1\n",
    }
    deps = read_dependencies("analytics", reader(files))
    assert deps.packages == (
        PackageSpec("hub", "dbt-labs/dbt_utils", "1.1.1", locked=True),
        PackageSpec("hub", "acme/extra", None, (">=0.2.0",)),
        PackageSpec("local", "shared/macros_pkg"),
    )
    assert deps.problems == ()


def test_git_packages_keep_their_revision_and_subdirectory() -> None:
    files = {
        "dependencies.yml": (
            "packages:\n  - git: https://github.com/acme/dbt-pkgs.git\n    revision: v2\n    subdirectory: core\n"
            "  - private: acme/internal-dbt\n    revision: main\n"
        )
    }
    deps = read_dependencies(".", reader(files))
    assert deps.packages == (
        PackageSpec("git", "https://github.com/acme/dbt-pkgs.git", "v2", subdirectory="core"),
        PackageSpec("git", "https://github.com/acme/internal-dbt.git", "main"),
    )


def test_unreadable_dependency_files_are_named_not_raised() -> None:
    deps = read_dependencies(".", reader({"packages.yml": "packages: [oops\n", "package-lock.yml": "packages: 3\n"}))
    assert deps.packages == ()
    assert len(deps.problems) == 2
    assert "package-lock.yml: `packages` must be a list" in deps.problems


def test_a_range_picks_the_highest_released_version_inside_it() -> None:
    available = ["0.9.6", "1.0.0", "1.1.1", "1.3.0", "2.0.0", "1.4.0-rc1"]
    assert pick_version(available, [">=1.0.0", "<2.0.0"]) == "1.3.0"
    assert pick_version(available, ["1.1.1"]) == "1.1.1"
    assert pick_version(available, [">3"]) is None
    assert pick_version(available, ["not a version"]) is None


def test_only_github_repositories_are_places_packages_come_from() -> None:
    assert github_archive("https://codeload.github.com/dbt-labs/dbt-utils/tar.gz/1.1.1", None) == GitHubArchive(
        "dbt-labs", "dbt-utils", "1.1.1"
    )
    assert github_archive("https://github.com/acme/pkg.git", "abc123") == GitHubArchive("acme", "pkg", "abc123")
    assert github_archive("git@github.com:acme/pkg.git", None) == GitHubArchive("acme", "pkg", "HEAD")
    assert github_archive("https://gitlab.com/acme/pkg.git", "main") is None
    assert github_archive("https://github.com.evil.example/acme/pkg.git", "main") is None
    assert github_archive("https://codeload.github.com/a/b/tar.gz/../../x", None) is None
    assert github_archive("https://github.com/acme/pkg.git", "../../etc") is None


def test_a_package_macros_are_installed_where_dbt_deps_puts_them() -> None:
    files = {
        "dbt_project.yml": b"name: acme_utils\nmacro-paths: ['lib']\n",
        "lib/keys.sql": b"{% macro k() %}1{% endmacro %}",
        "lib/deep/more.sql": b"{% macro m() %}2{% endmacro %}",
        "models/example.sql": b"select 1",
    }
    name, macros = package_macros(files)
    assert name == "acme_utils"
    assert sorted(macros) == ["deep/more.sql", "keys.sql"]
    assert installed_paths("analytics", name, macros) == {
        "deep/more.sql": "analytics/dbt_packages/acme_utils/macros/deep/more.sql",
        "keys.sql": "analytics/dbt_packages/acme_utils/macros/keys.sql",
    }
    assert package_macros({"lib/keys.sql": b""}) == (None, {})
