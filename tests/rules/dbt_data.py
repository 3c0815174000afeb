"""The dbt test projects under tests/data/dbt, as in-memory repositories for the engine."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "dbt"


def project_files(name: str, prefix: str = "analytics") -> dict[str, str]:
    """Every file of ``tests/data/dbt/<name>`` keyed by its path in a repository under ``prefix``."""
    root = DATA / name
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            out[f"{prefix}/{rel}" if prefix else rel] = path.read_text()
    return out
