"""``tessera setup`` finds the App manifest in a checkout and in an installed package alike."""

from __future__ import annotations

import tomllib
from pathlib import Path

from app.setup import MANIFEST_DATA_PATH, default_manifest_path, load_manifest

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_installs_the_checkout_manifest_where_the_lookup_searches() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    data_files = settings["tool"]["setuptools"]["data-files"]
    assert data_files[str(MANIFEST_DATA_PATH.parent)] == ["deploy/app-manifest.yml"]
    assert (ROOT / "deploy" / "app-manifest.yml").is_file()


def test_an_installed_package_without_a_checkout_finds_the_installed_manifest(tmp_path: Path) -> None:
    data = tmp_path / "venv"
    installed = data / MANIFEST_DATA_PATH
    installed.parent.mkdir(parents=True)
    installed.write_text((ROOT / "deploy" / "app-manifest.yml").read_text(encoding="utf-8"), encoding="utf-8")
    path = default_manifest_path(tmp_path / "site-packages", [tmp_path / "elsewhere", data])
    assert path == installed
    assert "default_permissions" in load_manifest(path)


def test_a_checkout_manifest_comes_before_an_installed_one(tmp_path: Path) -> None:
    installed = tmp_path / "venv" / MANIFEST_DATA_PATH
    installed.parent.mkdir(parents=True)
    installed.write_text("name: stale\n", encoding="utf-8")
    assert default_manifest_path(ROOT, [tmp_path / "venv"]) == ROOT / "deploy" / "app-manifest.yml"


def test_with_no_manifest_anywhere_the_checkout_path_is_the_one_named(tmp_path: Path) -> None:
    assert default_manifest_path(tmp_path, [tmp_path / "venv"]) == tmp_path / "deploy" / "app-manifest.yml"
