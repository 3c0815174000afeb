"""The one lineage index: readers, inputs and the column-by-column walk."""

from __future__ import annotations

import os
import subprocess
import sys

from rules.lineage import ALL, LineageIndex
from rules.model import Asset, Column, Edge, Snapshot


def _chain() -> LineageIndex:
    return LineageIndex([
        Edge("raw.orders", "amount", "stg_orders", "amount"),
        Edge("raw.orders", "id", "stg_orders", "order_id"),
        Edge("stg_orders", "amount", "fct_revenue", "revenue"),
        Edge("stg_orders", "order_id", "fct_revenue", None, "join"),
        Edge("fct_revenue", "revenue", "rpt_daily", "revenue"),
        Edge("fct_revenue", "region", "rpt_region", "region"),
    ])


def test_a_walk_follows_only_the_changed_column_through_plain_selects() -> None:
    reached = _chain().walk("raw.orders", frozenset({"amount"}))
    assert set(reached) == {"raw.orders", "stg_orders", "fct_revenue", "rpt_daily"}
    assert reached["rpt_daily"].columns == frozenset({"revenue"})
    assert reached["rpt_daily"].path == ("raw.orders", "stg_orders", "fct_revenue", "rpt_daily")


def test_a_column_used_in_a_join_makes_every_column_of_the_reader_affected() -> None:
    reached = _chain().walk("raw.orders", frozenset({"id"}))
    assert reached["fct_revenue"].columns == frozenset({ALL})
    assert {"rpt_daily", "rpt_region"} <= set(reached)


def test_a_cast_that_absorbs_the_change_stops_the_walk_there() -> None:
    reached = _chain().walk(
        "raw.orders", frozenset({"amount"}), absorbs=lambda edge: edge.downstream == "fct_revenue"
    )
    assert set(reached) == {"raw.orders", "stg_orders"}


def test_inputs_name_the_upstream_columns_feeding_a_column_whatever_the_column_case() -> None:
    inputs = _chain().inputs("stg_orders", "Order_ID")
    assert [(e.upstream, e.upstream_column) for e in inputs] == [("raw.orders", "id")]


def test_a_dependency_without_lineage_reads_every_column_but_names_none() -> None:
    snapshot = Snapshot(assets={
        "a": Asset(fqn="a", kind="model", columns=(Column("x"),)),
        "b": Asset(fqn="b", kind="model", depends_on=("a",)),
    })
    index = LineageIndex.of(snapshot)
    assert [e.downstream for e in index.readers("a", "x")] == ["b"]
    assert index.column_readers("a", "x") == []
    assert set(index.walk("a", frozenset({"x"}))) == {"a", "b"}


WALK_UNDER_A_SEED = """
from rules.lineage import LineageIndex
from rules.model import Edge
columns = [f"c{i}" for i in range(12)]
edges = [Edge("a", c, f"mid_{c}", "x") for c in columns] + [Edge(f"mid_{c}", "x", "end", "y") for c in columns]
print(LineageIndex(edges).walk("a", frozenset(columns))["end"].path)
"""


def test_the_path_a_walk_reports_is_the_same_in_every_process_whatever_its_hash_seed() -> None:
    """Twelve columns reach ``end`` through twelve models: which path is reported must not depend
    on the order Python happens to iterate a set in, or a re-analysis rewrites the comment's graph."""
    paths = {
        subprocess.run(
            [sys.executable, "-c", WALK_UNDER_A_SEED], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in range(6)
    }
    assert paths == {"('a', 'mid_c0', 'end')\n"}
