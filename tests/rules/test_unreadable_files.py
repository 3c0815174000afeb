"""A model file the source lists but cannot give as text (binary, too large) is not a schema change."""

from __future__ import annotations

import datetime

from rules.analyze import analyze
from rules.config import parse_config
from rules.model import Analysis
from rules.sources import DictSource

PROJECT = "name: shop\n"
PROPS = """\
models:
  - name: fct_revenue
    columns:
      - name: order_id
        data_type: integer
      - name: plan_code
        data_type: varchar
      - name: revenue
        data_type: numeric
"""
SQL = "select order_id, plan_code, revenue, 1 as discount\nfrom {{ ref('stg_orders') }}\n"
STG = "select 1::integer as order_id, 'a'::varchar as plan_code, 2.0::numeric as revenue\n"


class UnreadableSource(DictSource):
    """Like GitHub's source for a binary blob: the path is listed, its text is None."""

    def __init__(self, files: dict[str, str], unreadable: set[str]) -> None:
        super().__init__(files)
        self._unreadable = unreadable

    def read(self, path: str) -> str | None:
        return None if path in self._unreadable else super().read(path)


def run_with_binary_head(path: str) -> Analysis:
    files = {
        "dbt_project.yml": PROJECT,
        "models/schema.yml": PROPS,
        "models/fct_revenue.sql": SQL,
        "models/stg_orders.sql": STG,
    }
    return analyze(
        DictSource(files),
        UnreadableSource({**files, path: "\x00binary"}, {path}),
        base_rev="base",
        head_rev="head",
        config=parse_config(None),
        changed_paths=[path],
        today=datetime.date(2026, 11, 25),
    )


def test_a_model_whose_sql_cannot_be_read_claims_no_removed_columns_and_is_unparsed() -> None:
    analysis = run_with_binary_head("models/fct_revenue.sql")
    rules = {(c.rule, c.path) for c in analysis.changes}
    assert not [c for c in analysis.changes if c.rule == "COLUMN_REMOVED"], rules
    assert ("UNPARSED", "models/fct_revenue.sql") in rules
