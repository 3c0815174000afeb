"""Regenerate the dbt side of the parity check: manifests and dbt's own breaking-change verdicts.

Needs dbt-core 1.10 with the duckdb adapter (kept out of the project's dependencies):

    python -m venv /tmp/dbt && /tmp/dbt/bin/pip install "dbt-core==1.10.*" "dbt-duckdb==1.10.*"
    .venv/bin/python tests/data/dbt_parity/regenerate.py /tmp/dbt/bin/dbt

It runs ``dbt parse`` on ``base/`` and ``head/``, then ``dbt ls -s state:modified --state`` on head
against base, and writes ``base_manifest.json`` / ``head_manifest.json`` (model nodes only) and
``dbt_verdicts.json`` (what dbt listed as modified and the breaking contract changes it reported).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATEGORIES = (
    "contract_enforced_disabled",
    "columns_removed",
    "column_type_changes",
    "enforced_column_constraint_removed",
    "enforced_model_constraint_removed",
)
KEEP_NODE_KEYS_DROPPED = ("docs", "unrendered_config", "config_call_dict", "unrendered_config_call_dict",
                          "created_at", "build_path", "deferred", "extra_ctes", "extra_ctes_injected",
                          "refs", "sources", "metrics", "functions", "doc_blocks")


def _trim(manifest: dict) -> dict:
    nodes = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    for node in nodes.values():
        for key in KEEP_NODE_KEYS_DROPPED:
            node.pop(key, None)
    meta = {k: manifest["metadata"][k] for k in ("dbt_schema_version", "dbt_version", "adapter_type", "project_name")}
    return {"metadata": meta, "nodes": nodes, "sources": manifest["sources"], "exposures": manifest["exposures"],
            "groups": manifest.get("groups", {}), "disabled": manifest.get("disabled", {})}


def main(dbt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "profiles.yml").write_text(
            f"parity:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {work / 'p.duckdb'}\n"
        )
        for side in ("base", "head"):
            shutil.copytree(HERE / side, work / side)
            subprocess.run([dbt, "parse", "--profiles-dir", str(work), "--no-partial-parse"],
                           cwd=work / side, check=True, capture_output=True)
            manifest = json.loads((work / side / "target" / "manifest.json").read_text())
            (HERE / f"{side}_manifest.json").write_text(json.dumps(_trim(manifest), indent=1) + "\n")
        out = subprocess.run(
            [dbt, "ls", "-s", "state:modified", "--state", str(work / "base" / "target"), "--profiles-dir",
             str(work), "--no-partial-parse", "--log-format", "json"],
            cwd=work / "head", check=True, capture_output=True, text=True,
        ).stdout
    modified: set[str] = set()
    breaking: dict[str, dict[str, object]] = {}
    for line in out.splitlines():
        event = json.loads(line)
        name, data = event["info"]["name"], event.get("data", {})
        if name == "PrintEvent":
            modified.add(event["info"]["msg"].split(".")[-1])
        elif name == "UnversionedBreakingChange":
            found = {c: data[c] for c in CATEGORIES if data.get(c)}
            if any("Materialization changed" in text for text in data.get("breaking_changes", [])):
                found["materialization_changed"] = True
            breaking[data["model_name"]] = found
    verdicts = {"dbt": "dbt-core 1.10 + dbt-duckdb 1.10", "modified": sorted(modified), "breaking": breaking}
    (HERE / "dbt_verdicts.json").write_text(json.dumps(verdicts, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dbt")
