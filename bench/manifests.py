"""Load every real dbt manifest under ``../shared/fixtures/dbt`` and count what Tessera reads.

    .venv/bin/python bench/manifests.py [FOLDER]

Prints one row per manifest: schema version, assets by kind, columns, columns with a declared type,
assets with an owner, enforced contracts, exposures, groups, problems, load time, and (with
``--infer``) how many model columns inference could type from the compiled SQL. Exit status 1 when
a manifest fails to load or reports problems.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.build import ParseCache, build_snapshot  # noqa: E402
from rules.config import parse_config  # noqa: E402
from rules.dbt_manifest import load_manifest, manifest_version  # noqa: E402
from rules.model import UNKNOWN  # noqa: E402
from rules.sources import DictSource  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "fixtures" / "dbt"


def count(path: Path, *, infer: bool) -> dict[str, object]:
    text = path.read_text()
    data = json.loads(text)
    started = time.perf_counter()
    snapshot = load_manifest(data)
    seconds = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for asset in snapshot.assets.values():
        kinds[asset.kind] = kinds.get(asset.kind, 0) + 1
    row: dict[str, object] = {
        "manifest": path.parent.name,
        "version": manifest_version(data),
        "assets": dict(sorted(kinds.items())),
        "columns": sum(len(a.columns) for a in snapshot.assets.values()),
        "typed": sum(1 for a in snapshot.assets.values() for c in a.columns if c.declared_type),
        "owners": sum(1 for a in snapshot.assets.values() if a.owner),
        "contracts": sum(1 for a in snapshot.assets.values() if a.contract_enforced),
        "exposures": len(snapshot.exposures),
        "groups": len(snapshot.groups),
        "problems": len(snapshot.problems),
        "load_ms": round(seconds * 1000),
    }
    if infer:
        config = parse_config("dbt: {manifest: target/manifest.json}\n")
        started = time.perf_counter()
        built = build_snapshot(DictSource({"target/manifest.json": text}), config, cache=ParseCache())
        models = [a for a in built.assets.values() if a.kind == "model" and a.enabled]
        row["infer_s"] = round(time.perf_counter() - started, 2)
        row["model_columns_typed"] = (
            f"{sum(1 for a in models for c in a.columns if c.type != UNKNOWN)}"
            f"/{sum(len(a.columns) for a in models)}"
        )
        row["edges"] = len(built.edges)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--infer", action="store_true", help="also infer model columns from compiled SQL")
    args = parser.parse_args(argv)
    paths = sorted(args.folder.glob("*/manifest.json"))
    if not paths:
        print(f"no manifests under {args.folder}", file=sys.stderr)
        return 1
    failed = False
    for path in paths:
        try:
            row = count(path, infer=args.infer)
        except Exception as error:  # noqa: BLE001 - report every manifest, then fail
            print(f"{path.parent.name}: FAILED {type(error).__name__}: {error}")
            failed = True
            continue
        failed = failed or bool(row["problems"])
        print(json.dumps(row))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
