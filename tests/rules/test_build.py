"""The schema state at one commit: inference in DAG order, scoping to the change, the parse cache."""

from __future__ import annotations

import json

import pytest

from rules.build import InferenceJob, ParseCache, build_snapshot, merge_columns
from rules.config import parse_config
from rules.model import UNKNOWN, Column, Config, Edge
from rules.sources import DictSource
from rules.types import normalize_type
from tests.rules.dbt_data import project_files

CONFIG = parse_config("dbt: {dialect: postgres}\n")


@pytest.fixture(scope="module")
def harbor_files() -> dict[str, str]:
    return project_files("harbor")


def types(snapshot, fqn: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(c.name, c.type) for c in snapshot.assets[fqn].columns]


def test_model_columns_and_types_are_inferred_from_parents_in_dag_order(harbor_files: dict[str, str]) -> None:
    snapshot = build_snapshot(DictSource(harbor_files), CONFIG)
    assert types(snapshot, "stg_orders") == [
        ("order_id", "INT"),
        ("customer_id", "INT"),
        ("amount", "DECIMAL(16, 2)"),
        ("status", "VARCHAR"),
        ("order_date", "DATE"),
    ]
    # two layers down: the source's types flow through stg_orders into customer_revenue
    assert types(snapshot, "customer_revenue") == [
        ("customer_id", "INT"),
        ("lifetime_revenue", "DECIMAL(18, 2)"),
    ]
    assert snapshot.assets["customer_revenue"].columns_known
    assert snapshot.problems == []


def test_declared_yaml_types_win_over_inferred_ones(harbor_files: dict[str, str]) -> None:
    snapshot = build_snapshot(DictSource(harbor_files), CONFIG)
    # inferred DECIMAL(16, 2) from the macro; the contract declares numeric(18,2)
    assert snapshot.assets["fct_revenue"].column("revenue").type == "DECIMAL(18, 2)"  # type: ignore[union-attr]
    email = snapshot.assets["dim_customers.v1"].column("email")
    assert email is not None and email.type == "TEXT" and email.declared_type
    order_id = snapshot.assets["stg_orders"].column("order_id")
    assert order_id is not None and order_id.type == "INT" and order_id.constraints == ("unique", "not_null")


def test_column_edges_include_selects_joins_and_filters(harbor_files: dict[str, str]) -> None:
    edges = set(build_snapshot(DictSource(harbor_files), CONFIG).edges)
    assert Edge("stg_orders", "amount", "fct_revenue", "revenue", "select") in edges
    assert Edge("stg_orders", "status", "fct_revenue", None, "filter") in edges
    assert Edge("stg_customers", "customer_id", "fct_revenue", None, "join") in edges
    assert Edge("fct_revenue", "plan_code", "customer_revenue", None, "join") in edges
    assert Edge("shop.orders", "amount_cents", "stg_orders", "amount", "select") in edges


def test_scope_infers_the_change_its_downstream_and_its_ancestors_only() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id, 'x' as label",
        "models/b.sql": "select id, label from {{ ref('a') }}",
        "models/c.sql": "select id from {{ ref('b') }}",
        "models/lonely.sql": "select 2 as other",
        "models/s.yml": "models:\n  - name: lonely\n    columns: [{name: other, data_type: bigint}]\n",
    }
    snapshot = build_snapshot(DictSource(files), CONFIG, scope={"models/b.sql"})
    assert types(snapshot, "b") == [("id", "INT"), ("label", "VARCHAR")]  # read through a's schema
    assert snapshot.assets["a"].sql is None  # the ancestor itself is shown as a cheap asset
    assert types(snapshot, "c") == [("id", "INT")]  # downstream
    assert snapshot.assets["b"].sql == "select id, label from a"
    lonely = snapshot.assets["lonely"]  # unrelated: a cheap asset from its YAML
    assert lonely.sql is None
    assert [(c.name, c.type) for c in lonely.columns] == [("other", "BIGINT")]
    assert not any(e.downstream == "lonely" for e in snapshot.edges)


def test_ancestors_behind_an_enforced_contract_are_not_read() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/raw.sql": "select {{ broken(",
        "models/mid.sql": "select id from {{ ref('raw') }}",
        "models/top.sql": "select id * 2 as twice from {{ ref('mid') }}",
        "models/s.yml": (
            "models:\n  - name: mid\n    config: {contract: {enforced: true}}\n"
            "    columns: [{name: id, data_type: bigint}]\n"
        ),
    }
    snapshot = build_snapshot(DictSource(files), CONFIG, scope={"models/top.sql"})
    assert types(snapshot, "top") == [("twice", "BIGINT")]
    assert snapshot.problems == []  # raw.sql was never rendered


def test_a_model_whose_parent_was_deleted_is_analysed_on_both_sides() -> None:
    base = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id",
        "models/b.sql": "select id from {{ ref('a') }}",
    }
    head = {k: v for k, v in base.items() if k != "models/a.sql"}
    scope = {"models/a.sql"}
    base_snapshot = build_snapshot(DictSource(base), CONFIG, scope=scope)
    head_snapshot = build_snapshot(DictSource(head), CONFIG, scope=scope)
    assert base_snapshot.assets["b"].sql == head_snapshot.assets["b"].sql == "select id from a"
    assert types(base_snapshot, "b") == [("id", "INT")]
    assert types(head_snapshot, "b") == [("id", UNKNOWN)]


def test_a_warm_cache_infers_and_renders_nothing_again(harbor_files: dict[str, str]) -> None:
    cache = ParseCache()
    first = build_snapshot(DictSource(harbor_files), CONFIG, cache=cache)
    cache.hits = cache.misses = 0
    second = build_snapshot(DictSource(harbor_files), CONFIG, cache=cache)
    assert cache.misses == 0 and cache.hits > 0
    assert second.assets == first.assets
    assert second.edges == first.edges


def test_downstream_of_a_change_that_keeps_the_output_schema_is_served_from_the_cache() -> None:
    base = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id, 'x' as label",
        "models/b.sql": "select id, label from {{ ref('a') }}",
        "models/c.sql": "select id from {{ ref('b') }}",
        "models/d.sql": "select count(*) as n from {{ ref('c') }}",
    }
    head = {**base, "models/a.sql": "-- reformatted\nSELECT 1 AS id,\n  'y' AS label"}
    scope = {"models/a.sql"}
    cache = ParseCache()
    build_snapshot(DictSource(base), CONFIG, scope=scope, cache=cache)
    cache.hits = cache.misses = 0
    build_snapshot(DictSource(head), CONFIG, scope=scope, cache=cache)
    assert cache.misses == 3  # the head snapshot, a rendered, a inferred; b, c and d are cache hits


def test_a_changed_output_schema_reinfers_downstream() -> None:
    base = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id",
        "models/b.sql": "select id from {{ ref('a') }}",
    }
    head = {**base, "models/a.sql": "select 'one' as id"}
    cache = ParseCache()
    build_snapshot(DictSource(base), CONFIG, scope={"models/a.sql"}, cache=cache)
    snapshot = build_snapshot(DictSource(head), CONFIG, scope={"models/a.sql"}, cache=cache)
    assert types(snapshot, "b") == [("id", "VARCHAR")]


def test_sql_files_outside_dbt_projects_are_read_with_the_sql_dialect(harbor_files: dict[str, str]) -> None:
    files = {
        **harbor_files,
        "migrations/001_init.sql": "CREATE TABLE billing.invoices (id bigint NOT NULL, total numeric(12,2));",
        "migrations/002_more.sql": "ALTER TABLE billing.invoices ADD COLUMN paid_at timestamptz;",
    }
    config = parse_config("dbt: {dialect: postgres}\nsql: {dialect: postgres}\n")
    snapshot = build_snapshot(DictSource(files), config)
    invoices = snapshot.assets["billing.invoices"]
    assert [c.name for c in invoices.columns] == ["id", "total", "paid_at"]
    assert invoices.path in ("migrations/001_init.sql", "migrations/002_more.sql")
    assert "fct_revenue" in snapshot.assets  # dbt SQL is not read as DDL
    assert not any(p.path.startswith("analytics/") for p in snapshot.problems)


def test_sql_paths_limit_which_sql_files_are_read() -> None:
    files = {
        "db/schema.sql": "CREATE TABLE s.t (a int);",
        "scripts/adhoc.sql": "CREATE TABLE s.scratch (a int);",
    }
    snapshot = build_snapshot(DictSource(files), parse_config("sql: {paths: ['db/**/*.sql', 'db/*.sql']}\n"))
    assert set(snapshot.assets) == {"s.t"}


def test_ignored_paths_leave_no_assets_or_problems(harbor_files: dict[str, str]) -> None:
    files = {**harbor_files, "analytics/models/sandbox/broken.sql": "select {{ oops("}
    config = parse_config(
        "dbt: {dialect: postgres}\nignore: ['analytics/models/sandbox/**', 'analytics/seeds/**']\n"
    )
    snapshot = build_snapshot(DictSource(files), config)
    assert "broken" not in snapshot.assets and "country_codes" not in snapshot.assets
    assert snapshot.problems == []
    assert "fct_revenue" in snapshot.assets


def test_configured_projects_are_used_instead_of_searching() -> None:
    files = {
        "a/dbt_project.yml": "name: a\n",
        "a/models/x.sql": "select 1 as id",
        "b/dbt_project.yml": "name: b\n",
        "b/models/y.sql": "select 1 as id",
    }
    snapshot = build_snapshot(DictSource(files), parse_config("dbt: {projects: [a]}\n"))
    assert "x" in snapshot.assets and "y" not in snapshot.assets


def test_an_unparseable_model_is_a_problem_on_its_file_with_unknown_columns() -> None:
    files = {"dbt_project.yml": "name: p\n", "models/a.sql": "select from where ((("}
    snapshot = build_snapshot(DictSource(files), Config())
    assert snapshot.assets["a"].columns_known is False
    assert [p.path for p in snapshot.problems] == ["models/a.sql"]


def test_a_parse_error_points_at_its_line_in_the_model_file() -> None:
    sql = "{{ config(materialized='table') }}\n\nselect id,\n  amount +* 2 as bad\nfrom {{ ref('b') }}\n"
    files = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": sql,
        "models/b.sql": "select 1 as id, 2 as amount",
    }
    snapshot = build_snapshot(DictSource(files), Config())
    assert [(p.path, p.line) for p in snapshot.problems] == [("models/a.sql", 4)]


def manifest(nodes: dict, **extra) -> str:  # type: ignore[no-untyped-def,type-arg]
    return json.dumps(
        {
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                "adapter_type": "duckdb",
            },
            "nodes": nodes,
            "sources": extra.get("sources", {}),
            "exposures": {},
            "groups": {},
        }
    )


def model_node(name: str, compiled: str, deps: list[str], columns: dict | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "resource_type": "model",
        "name": name,
        "package_name": "p",
        "original_file_path": f"models/{name}.sql",
        "raw_code": compiled,
        "compiled_code": compiled,
        "relation_name": f'"db"."main"."{name}"',
        "depends_on": {"nodes": deps},
        "columns": columns or {},
        "config": {"materialized": "table"},
    }


def test_a_configured_manifest_is_read_and_its_compiled_sql_inferred_through_relation_names() -> None:
    nodes = {
        "model.p.orders": model_node(
            "orders",
            'select id, amount from "db"."raw"."orders"',
            ["source.p.raw.orders"],
        ),
        "model.p.totals": model_node(
            "totals", 'select amount as total from "db"."main"."orders"', ["model.p.orders"]
        ),
    }
    sources = {
        "source.p.raw.orders": {
            "resource_type": "source",
            "name": "orders",
            "source_name": "raw",
            "original_file_path": "models/sources.yml",
            "relation_name": '"db"."raw"."orders"',
            "columns": {
                "id": {"name": "id", "data_type": "integer"},
                "amount": {"name": "amount", "data_type": "decimal(10,2)"},
            },
        }
    }
    files = {
        "analytics/dbt_project.yml": "name: p\n",
        "analytics/models/orders.sql": "select id, amount from {{ source('raw', 'orders') }}",
        "analytics/models/totals.sql": "select amount as total from {{ ref('orders') }}",
        "analytics/target/manifest.json": manifest(nodes, sources=sources),
    }
    config = parse_config("dbt: {manifest: analytics/target/manifest.json}\n")
    snapshot = build_snapshot(DictSource(files), config)
    assert snapshot.assets["orders"].path == "analytics/models/orders.sql"
    assert types(snapshot, "totals") == [("total", "DECIMAL(10, 2)")]
    assert Edge("orders", "amount", "totals", "total", "select") in snapshot.edges
    assert snapshot.problems == []


def test_a_configured_manifest_that_is_absent_falls_back_to_the_project() -> None:
    files = {"dbt_project.yml": "name: p\n", "models/a.sql": "select 1 as id"}
    snapshot = build_snapshot(DictSource(files), parse_config("dbt: {manifest: target/manifest.json}\n"))
    assert types(snapshot, "a") == [("id", "INT")]


def test_a_manifest_that_is_not_json_is_a_problem() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id",
        "target/manifest.json": "{oops",
    }
    snapshot = build_snapshot(DictSource(files), parse_config("dbt: {manifest: target/manifest.json}\n"))
    assert [p.path for p in snapshot.problems] == ["target/manifest.json"]
    assert "a" in snapshot.assets


def test_merge_keeps_declared_order_and_types_for_an_enforced_contract() -> None:
    declared = (Column("b", "BIGINT", declared_type=True), Column("a", "TEXT", declared_type=True))
    inferred = (
        Column("a", "VARCHAR", position=1, expression="x.a"),
        Column("b", "INT", position=2, expression="x.b"),
    )
    columns, known = merge_columns(declared, inferred, True, enforced=True)
    assert [(c.name, c.type, c.expression) for c in columns] == [("b", "BIGINT", "x.b"), ("a", "TEXT", "x.a")]
    assert known


def test_merge_keeps_declared_extras_only_when_the_query_columns_are_not_known() -> None:
    declared = (Column("doc_only", "TEXT", declared_type=True),)
    inferred = (Column("a", "INT", position=1),)
    assert [c.name for c in merge_columns(declared, inferred, True, enforced=False)[0]] == ["a"]
    columns, known = merge_columns(declared, inferred, False, enforced=False)
    assert [c.name for c in columns] == ["a", "doc_only"] and not known


def test_a_model_named_like_a_source_table_is_not_confused_with_it() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/src.yml": (
            "sources:\n  - name: raw\n    tables:\n      - name: orders\n"
            "        columns: [{name: id, data_type: bigint}, {name: total, data_type: 'decimal(10,2)'}]\n"
        ),
        "models/orders.sql": "select id, total from {{ source('raw', 'orders') }}",
        "models/big_orders.sql": "select id from {{ ref('orders') }} where total > 100",
    }
    snapshot = build_snapshot(DictSource(files), CONFIG)
    assert Edge("raw.orders", "total", "orders", "total", "select") in snapshot.edges
    assert Edge("orders", "total", "big_orders", None, "filter") in snapshot.edges
    assert types(snapshot, "orders") == [("id", "BIGINT"), ("total", "DECIMAL(10, 2)")]


def test_dbt_snapshots_are_assets_with_their_query_columns_and_dbts_own() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/orders.sql": "select 1 as id, 'open' as status",
        "snapshots/orders_history.sql": (
            "-- history of orders\n"
            "{% snapshot orders_history %}\n"
            "{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols='all') }}\n"
            "select id, status from {{ ref('orders') }}\n"
            "{% endsnapshot %}\n"
        ),
        "models/open_orders.sql": "select id from {{ ref('orders_history') }} where dbt_valid_to is null",
    }
    snapshot = build_snapshot(DictSource(files), CONFIG)
    history = snapshot.assets["orders_history"]
    assert (history.kind, history.materialized, history.line) == ("snapshot", "snapshot", 2)
    assert history.unique_key == ("id",)
    assert [c.name for c in history.columns] == [
        "id",
        "status",
        "dbt_scd_id",
        "dbt_updated_at",
        "dbt_valid_from",
        "dbt_valid_to",
    ]
    assert Edge("orders_history", "dbt_valid_to", "open_orders", None, "filter") in snapshot.edges
    assert snapshot.problems == []


def test_manifest_nodes_without_compiled_code_are_rendered_from_their_raw_code() -> None:
    stg = model_node("stg", "", ["source.p.raw.orders"])
    stg.pop("compiled_code")
    stg["raw_code"] = (
        "select id, cast(amount as {{ dbt.type_numeric() }}) as amount from {{ source('raw', 'orders') }}"
    )
    fct = model_node("fct", "", ["model.p.stg"])
    fct.pop("compiled_code")
    fct["raw_code"] = "select id, amount * 2 as doubled from {{ ref('stg') }}"
    sources = {
        "source.p.raw.orders": {
            "resource_type": "source",
            "name": "orders",
            "source_name": "raw",
            "relation_name": '"db"."raw"."orders"',
            "columns": {"id": {"name": "id", "data_type": "bigint"}, "amount": {"name": "amount"}},
        }
    }
    files = {"target/manifest.json": manifest({"model.p.stg": stg, "model.p.fct": fct}, sources=sources)}
    snapshot = build_snapshot(DictSource(files), parse_config("dbt: {manifest: target/manifest.json}\n"))
    assert snapshot.assets["stg"].sql == "select id, cast(amount as numeric(28, 6)) as amount from raw.orders"
    assert Edge("raw.orders", "id", "stg", "id", "select") in snapshot.edges
    assert Edge("stg", "amount", "fct", "doubled", "select") in snapshot.edges
    assert types(snapshot, "fct")[0] == ("id", "BIGINT")
    assert snapshot.problems == []


def test_the_cache_forgets_the_least_recently_used_entries() -> None:
    cache = ParseCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)


def test_a_python_model_is_an_asset_from_its_yaml_that_sql_models_can_read() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id",
        "models/scores.py": "def model(dbt, session):\n    return dbt.ref('a').to_pandas()\n",
        "models/s.yml": "models:\n  - name: scores\n    columns: [{name: id, data_type: int}, {name: score, data_type: double}]\n",
        "models/top.sql": "select id from {{ ref('scores') }} where score > 0.5",
    }
    snapshot = build_snapshot(DictSource(files), CONFIG)
    scores = snapshot.assets["scores"]
    assert (scores.kind, scores.materialized, scores.sql, scores.depends_on) == (
        "model",
        "table",
        None,
        ("a",),
    )
    assert types(snapshot, "scores") == [("id", "INT"), ("score", normalize_type("double", "postgres"))]
    assert Edge("scores", "score", "top", None, "filter") in snapshot.edges
    assert snapshot.problems == []


def test_a_model_that_becomes_a_parent_looks_the_same_on_both_sides() -> None:
    base = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id",
        "models/b.sql": "select 2 as id",
    }
    head = {**base, "models/b.sql": "select a.id from {{ ref('a') }} as a"}
    scope = {"models/b.sql"}
    base_snapshot = build_snapshot(DictSource(base), CONFIG, scope=scope)
    head_snapshot = build_snapshot(DictSource(head), CONFIG, scope=scope)
    assert base_snapshot.assets["a"] == head_snapshot.assets["a"]  # an ancestor in head only
    assert types(head_snapshot, "b") == [("id", "INT")]


HARBOR_EDITS = {
    "drop a column read downstream": (
        "analytics/models/staging/stg_customers.sql",
        lambda text: text.replace("    lower(email) as email,\n", ""),
    ),
    "retype a staging column": (
        "analytics/models/staging/stg_customers.sql",
        lambda text: text.replace("    plan_code\n", "    cast(plan_code as int) as plan_code\n"),
    ),
    "start reading another model": (
        "analytics/models/marts/dim_customers_v2.sql",
        lambda text: text.replace(
            "from {{ ref('stg_customers') }}",
            "from {{ ref('stg_customers') }} join {{ ref('stg_orders') }} using (customer_id)",
        ),
    ),
    "change a source's declared type": (
        "analytics/models/staging/_sources.yml",
        lambda text: text.replace("data_type: bigint", "data_type: integer"),
    ),
}


@pytest.mark.parametrize("edit", sorted(HARBOR_EDITS))
def test_a_scoped_build_finds_what_a_full_build_finds(harbor_files: dict[str, str], edit: str) -> None:
    from rules.diff import diff_snapshots

    path, change = HARBOR_EDITS[edit]
    head_files = {**harbor_files, path: change(harbor_files[path])}
    assert head_files[path] != harbor_files[path]
    full = diff_snapshots(
        build_snapshot(DictSource(harbor_files), CONFIG),
        build_snapshot(DictSource(head_files), CONFIG),
        CONFIG,
    )
    scoped = diff_snapshots(
        build_snapshot(DictSource(harbor_files), CONFIG, scope={path}),
        build_snapshot(DictSource(head_files), CONFIG, scope={path}),
        CONFIG,
        changed_paths=[path],
    )

    def key(c):  # type: ignore[no-untyped-def]
        return (c.rule, c.severity, c.asset, c.column)

    assert full, edit
    assert sorted(map(key, scoped)) == sorted(map(key, full))


def test_a_build_leaves_the_collector_alone(harbor_files: dict[str, str]) -> None:
    import gc

    seen: list[bool] = []
    source = DictSource(harbor_files)
    real_read = source.read

    def read(path: str) -> str | None:
        seen.append(gc.isenabled())
        return real_read(path)

    source.read = read  # type: ignore[method-assign]
    assert gc.isenabled()
    build_snapshot(source, CONFIG)
    assert seen and all(seen)  # pausing it is the business of the process's owner (app.engine)


DECLARED_MID = (
    "models:\n  - name: mid\n    columns:\n"
    "      - {name: id, data_type: bigint}\n      - {name: label, data_type: varchar(20)}\n"
)


def test_an_ancestor_whose_yaml_types_every_column_it_produces_is_not_read_nor_its_parents() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/raw.sql": "select {{ broken(",
        "models/mid.sql": "select id, cast(label as text) as label from {{ ref('raw') }}",
        "models/top.sql": "select * from {{ ref('mid') }}",
        "models/s.yml": DECLARED_MID,
    }
    snapshot = build_snapshot(DictSource(files), CONFIG, scope={"models/top.sql"})
    assert types(snapshot, "top") == [("id", "BIGINT"), ("label", "VARCHAR(20)")]
    assert snapshot.problems == []  # raw.sql was never rendered


@pytest.mark.parametrize(
    "mid_sql",
    [
        "select id from {{ ref('raw') }}",  # the YAML declares a column the query does not produce
        "select label, id from {{ ref('raw') }}",  # another order
        "select id, label, 1 as extra from {{ ref('raw') }}",  # a column the YAML does not declare
        "select * from {{ ref('raw') }}",  # names that need the parent's schema
        "select id, upper(label) from {{ ref('raw') }}",  # a name sqlglot would invent
    ],
)
def test_an_ancestor_whose_yaml_does_not_match_its_query_is_still_read(mid_sql: str) -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/raw.sql": "select 1 as id, 'x' as label",
        "models/mid.sql": mid_sql,
        "models/top.sql": "select * from {{ ref('mid') }}",
        "models/s.yml": DECLARED_MID,
    }
    scoped = build_snapshot(DictSource(files), CONFIG, scope={"models/top.sql"})
    full = build_snapshot(DictSource(files), CONFIG)
    assert types(scoped, "top") == types(full, "top")  # the query's names, not the YAML's


def test_a_declared_ancestor_gives_the_same_findings_scoped_as_a_full_build() -> None:
    from rules.diff import diff_snapshots

    base = {
        "dbt_project.yml": "name: p\n",
        "models/raw.sql": "select 1 as id, 'x' as label, 2.5 as score",
        "models/mid.sql": "select id, label from {{ ref('raw') }}",
        "models/top.sql": "select id, label from {{ ref('mid') }}",
        "models/s.yml": DECLARED_MID,
    }
    head = {**base, "models/top.sql": "select cast(id as int) as id from {{ ref('mid') }}"}
    scope = {"models/top.sql"}
    scoped = diff_snapshots(
        build_snapshot(DictSource(base), CONFIG, scope=scope),
        build_snapshot(DictSource(head), CONFIG, scope=scope),
        CONFIG,
        changed_paths=sorted(scope),
    )
    full = diff_snapshots(build_snapshot(DictSource(base), CONFIG), build_snapshot(DictSource(head), CONFIG), CONFIG)

    def key(c):  # type: ignore[no-untyped-def]
        return (c.rule, c.severity, c.asset, c.column, c.before, c.after)

    assert scoped and sorted(map(key, scoped)) == sorted(map(key, full))
    assert {(c.rule, c.column) for c in scoped} >= {("COLUMN_REMOVED", "label")}


@pytest.mark.parametrize("raw_only", [False, True])
def test_a_manifest_model_with_every_column_typed_is_not_inferred_as_an_ancestor_unless_its_code_is_jinja(
    inference_jobs: list[InferenceJob], raw_only: bool
) -> None:
    typed = {"id": {"name": "id", "data_type": "bigint"}, "amount": {"name": "amount", "data_type": "double"}}
    orders = model_node("orders", 'select id, amount from "db"."raw"."orders"', [], columns=typed)
    if raw_only:  # no compiled code: the raw code is Jinja, whose text says nothing sure
        raw = 'select id, {{ "amount" }} as amount from "db"."raw"."orders"'  # parses, but as a struct
        orders = {**orders, "compiled_code": None, "raw_code": raw}
    nodes = {
        "model.p.orders": orders,
        "model.p.totals": model_node("totals", 'select amount as total from "db"."main"."orders"', ["model.p.orders"]),
    }
    files = {
        "analytics/dbt_project.yml": "name: p\n",
        "analytics/models/orders.sql": "select id, amount from {{ source('raw', 'orders') }}",
        "analytics/models/totals.sql": "select amount as total from {{ ref('orders') }}",
        "analytics/target/manifest.json": manifest(nodes),
    }
    config = parse_config("dbt: {manifest: analytics/target/manifest.json}\n")
    snapshot = build_snapshot(DictSource(files), config, scope={"analytics/models/totals.sql"})
    assert types(snapshot, "totals") == [("total", "DOUBLE")]
    assert sorted(job[3] for job in inference_jobs) == (["orders", "totals"] if raw_only else ["totals"])
