"""No false findings on real SQL (../shared): reformatting or renaming every CTE of the compiled
models of a real dbt project changes nothing in meaning."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from rules.semantic import compare_queries

HUBSPOT = Path(__file__).resolve().parents[2].parent / "shared/fixtures/dbt/fivetran-dbt_hubspot/manifest.json"


def _compiled_models() -> list[tuple[str, str]]:
    manifest = json.loads(HUBSPOT.read_text())
    return [
        (node["name"], node["compiled_code"])
        for node in manifest["nodes"].values()
        if node.get("resource_type") == "model" and node.get("compiled_code")
    ]


def _rename_ctes(sql: str) -> str | None:
    tree = sqlglot.parse_one(sql, read="postgres")
    names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    if not names:
        return None
    for cte in tree.find_all(exp.CTE):
        cte.set("alias", exp.TableAlias(this=exp.to_identifier(cte.alias_or_name + "_renamed")))
    for table in tree.find_all(exp.Table):
        if not table.args.get("db") and table.name in names:
            original = table.name
            table.set("this", exp.to_identifier(original + "_renamed"))
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(original)))
    return tree.sql("postgres")


@pytest.mark.shared
@pytest.mark.skipif(not HUBSPOT.exists(), reason="../shared is not on this machine")
def test_reformatted_and_cte_renamed_real_models_compare_equal() -> None:
    logging.getLogger("sqlglot").setLevel(logging.CRITICAL)
    models = _compiled_models()
    assert len(models) > 100
    findings = []
    renamed = 0
    for name, sql in models:
        pretty = sqlglot.transpile(sql, read="postgres", write="postgres", pretty=True)[0]
        findings += [(name, "reformatted", d.rule) for d in compare_queries(sql, pretty, dialect="postgres")]
        other = _rename_ctes(sql)
        if other is not None:
            renamed += 1
            findings += [(name, "ctes renamed", d.rule) for d in compare_queries(sql, other, dialect="postgres")]
    assert renamed > 50
    assert findings == []
