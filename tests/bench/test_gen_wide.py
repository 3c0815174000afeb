"""The engine benchmark's second project must be one Tessera reads fully: a speed measured on
models whose columns come out unknown would measure skipped work."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from rules.build import build_snapshot
from rules.config import parse_config
from rules.sources import DictSource

ROOT = Path(__file__).resolve().parents[2]


def _gen_wide():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_gen_wide", ROOT / "bench" / "gen_wide.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gen_wide"] = module
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in root.rglob("*")
        if path.is_file() and "dbt_packages" not in path.parts
    }


def test_every_generated_model_comes_out_with_the_columns_the_generator_gave_it(tmp_path: Path) -> None:
    """Stars over joins, dbt_utils.star(except=...), Jinja loops over a project var, surrogate
    keys and snapshots: each model's inferred columns are exactly the generator's, in order."""
    gen = _gen_wide()
    models = gen.generate(tmp_path, models=140, depth=6)
    files = _files(tmp_path)
    snapshot = build_snapshot(DictSource(files), parse_config(files[".tessera.yml"]))
    shapes_seen = set()
    for name, model in models.items():
        asset = snapshot.assets[name]
        assert asset.columns_known, name
        names = [c.name for c in asset.columns]
        if model.path.startswith("snapshots/"):
            assert set(names) == set(model.columns), name
        else:
            assert names == list(model.columns), name
        shapes_seen.update(word for word in ("p0.*", "dbt_utils.star", "for measure", "final") if word in model.sql)
    assert shapes_seen == {"p0.*", "dbt_utils.star", "for measure", "final"}
    assert len(snapshot.exposures) == 300


def test_the_pull_request_changes_twenty_models_of_the_deeper_layers(tmp_path: Path) -> None:
    gen = _gen_wide()
    models = gen.generate(tmp_path, models=300, depth=8)
    before = _files(tmp_path)
    changed = gen.change_models(tmp_path, models, 20)
    after = _files(tmp_path)
    assert sorted(changed) == sorted(p for p in after if after[p] != before.get(p))
    assert len(changed) == 20
    assert all(models[Path(p).stem].layer >= 2 for p in changed)
