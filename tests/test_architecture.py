"""ARCHITECTURE.md stays true: every module and folder it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _named_paths() -> set[str]:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    return set(re.findall(r"\b((?:app|rules|tests)/[\w/]*(?:\.py|/))", text))


def test_every_module_architecture_md_names_exists() -> None:
    named = _named_paths()
    assert len(named) > 20, "the page names the modules it draws"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == [], f"ARCHITECTURE.md names modules that do not exist: {missing}"


def test_every_dotted_module_architecture_md_names_exists() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    dotted = set(re.findall(r"`((?:app|rules)\.[\w.]+)`", text))
    for name in dotted:
        parts = name.split(".")
        module = next(
            (ROOT.joinpath(*parts[:n]) for n in range(len(parts), 0, -1)
             if ROOT.joinpath(*parts[:n]).with_suffix(".py").exists() or ROOT.joinpath(*parts[:n]).is_dir()),
            None,
        )
        assert module is not None, name
