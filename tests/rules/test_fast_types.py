"""The fast path for ancestor output types gives exactly sqlglot's answer, or steps aside.

An ancestor read only for its output schema is typed by resolving its columns directly and
letting sqlglot's type annotator type each projection (``rules.infer.fast_output_types``). The
oracle here is the full inference (``lineage=True``), which always qualifies and annotates the
whole query with sqlglot; the suite also turns on ``CHECK_FAST_PATH`` (tests/conftest.py), so
every fast answer in every test is compared with sqlglot's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import infer
from rules.build import build_snapshot
from rules.config import parse_config
from rules.infer import FastPathMismatch, infer_query
from rules.sources import DictSource
from rules.types import normalize_type

ROOT = Path(__file__).resolve().parents[2]

ORDERS = {"id": "int", "customer_id": "int", "amount": "decimal(10,2)", "status": "varchar", "ordered_at": "timestamp"}
CUSTOMERS = {"id": "int", "name": "text", "plan_code": "varchar(10)", "signed_up": "date"}
SCHEMA = {"raw.orders": ORDERS, "raw.customers": CUSTOMERS}

DIALECTS = ["duckdb", "postgres", "snowflake", "bigquery", "databricks", "redshift"]

PLAIN = [
    "select o.id, o.amount as amt, cast(o.amount as double) as d, upper(o.status) as s from raw.orders o",
    "select id, count(*) as n, count(distinct customer_id) as customers, max(amount) as top, min(status) as first_status"
    " from raw.orders group by id",
    "with a as (select * from raw.orders), b as (select a.id, coalesce(a.amount, 0) * 2 as doubled from a)"
    " select * from b",
    "select o.*, c.name, c.plan_code from raw.orders o left join raw.customers c on c.id = o.customer_id",
    "select id, sum(amount) as total, round(amount, 1) as r, amount / 3 as third,"
    " case when amount > 0 then amount else 0 end as positive from raw.orders",
    "select id, trim(status) as status_trimmed, lower(status) as status_lower, cast(ordered_at as date) as ordered_on,"
    " cast(date_trunc('month', ordered_at) as date) as month from raw.orders",
    "SELECT ID, Amount AS AMT, Customer_Id FROM RAW.ORDERS",
    "with source as (select * from raw.customers), renamed as (select id as customer_id, name, signed_up"
    " from source where id is not null) select renamed.customer_id, renamed.name, renamed.signed_up from renamed",
    "select o.id, o.amount + 1 as more, null as nothing, 1 as one, 'x' as letter, true as flag from raw.orders o",
    "select c.id, c.name || '!' as shout, length(c.name) as name_length from raw.customers c"
    " cross join raw.orders o where o.customer_id = c.id",
]

DERIVED = [
    "select snapshot_source.*, cast(null as varchar) as dbt_scd_id, cast(null as timestamp) as dbt_valid_to"
    " from (select * from raw.orders) as snapshot_source",
    "select t.id, t.doubled + 1 as more from (select id, amount * 2 as doubled from raw.orders where id > 0) as t",
    "select o.id, c.name from raw.orders o join (select id, upper(name) as name from raw.customers) c on c.id = o.id",
]
"""Derived tables: typed by the fast path; their lineage is sqlglot's."""

FALLBACK = [
    "select id from (select id from raw.orders) as t (renamed)",
    "select * from (select id from raw.orders union all select id from raw.customers) as u",
    "select * from (with x as (select id from raw.orders) select id from x) as t",
    "select id from raw.orders union all select id from raw.customers",
    "select (select max(id) from raw.customers) as m from raw.orders",
    'select "Id" from raw.orders',
    "select id from raw.orders join raw.customers using (id)",
    "select amount * 2 as a2, a2 + 1 as a3 from raw.orders",
    "select * from raw.orders o join raw.customers c on o.customer_id = c.id",
    "select id + 1 from raw.orders",
    "with recursive r as (select 1 as n) select n from r",
    "with t(a, b) as (select id, amount from raw.orders) select a, b from t",
    "select id, missing_column from raw.orders",
    "select id from raw.orders o join raw.customers c on o.customer_id = c.id",
]


@contextlib.contextmanager
def _answers(function: str) -> Iterator[list[Any]]:
    """Every answer ``rules.infer.<function>`` (one of the fast paths) gave while the block ran:
    None where it stepped aside for sqlglot."""
    seen: list[Any] = []
    original = getattr(infer, function)

    def spy(*args: Any) -> Any:
        answer = original(*args)
        seen.append(answer)
        return answer

    setattr(infer, function, spy)
    try:
        yield seen
    finally:
        setattr(infer, function, original)


def _fast_answer(sql: str, dialect: str) -> tuple[infer.Column, ...] | None:
    """What the type fast path says about ``sql`` on its own (placeholders set up as inference does)."""
    with _answers("fast_output_types") as seen:
        infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m", lineage=False)
    return seen[0] if seen else None


def _shape(info: infer.QueryInfo) -> tuple[object, ...]:
    return ([(c.name, c.type, c.position) for c in info.columns], info.columns_known, info.depends_on)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", PLAIN + DERIVED + FALLBACK)
def test_schema_only_inference_gives_the_full_inferences_names_and_types(sql: str, dialect: str) -> None:
    try:
        sqlglot.parse(sql, dialect=dialect)
    except sqlglot.errors.ParseError:
        pytest.skip(f"not {dialect} syntax")
    fast = infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m", lineage=False)
    full = infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m", lineage=True)
    assert _shape(fast) == _shape(full)


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "bigquery"])
@pytest.mark.parametrize("sql", PLAIN + DERIVED)
def test_plain_selects_are_answered_by_the_fast_path(sql: str, dialect: str) -> None:
    answer = _fast_answer(sql, dialect)
    assert answer is not None and len(answer) >= 2


@pytest.mark.parametrize("sql", FALLBACK)
def test_queries_the_fast_path_cannot_be_sure_of_go_to_sqlglot(sql: str) -> None:
    assert _fast_answer(sql, "duckdb") is None


LINEAGE = [
    *PLAIN,
    "with o as (select * from raw.orders where status <> 'void'), c as (select id, name from raw.customers)"
    " select o.id, c.name, o.amount from o join c on c.id = o.customer_id where o.amount > 0",
    "with totals as (select customer_id, sum(amount) as total, count(*) as n from raw.orders"
    " group by customer_id having count(*) > 1) select t.customer_id, t.total, t.n from totals as t",
    "with unused as (select id from raw.customers where plan_code = 'pro'), kept as (select id, amount from raw.orders)"
    " select id, amount from kept",
    "select o.*, c.name from raw.orders o left join raw.customers c on c.id = o.customer_id and c.signed_up < o.ordered_at",
    "select o.id, o.id as again, o.amount as id2 from raw.orders as o where o.status = 'paid' and o.customer_id in (1, 2)",
    "with orders_cte as (select id, customer_id from raw.orders) select o.id, o.customer_id from orders_cte as o"
    " join raw.customers as c on c.id = o.customer_id",
    "SELECT O.ID, C.NAME FROM RAW.ORDERS AS O JOIN RAW.CUSTOMERS AS C ON C.ID = O.CUSTOMER_ID GROUP BY O.ID, C.NAME",
]

LINEAGE_FALLBACK = [
    "select customer_id, sum(amount) as total from raw.orders group by 1",
    "select customer_id, sum(amount) as total from raw.orders group by all",
    "select id from raw.orders where customer_id in (select id from raw.customers)",
]


def _fast_lineage_answer(sql: str, dialect: str) -> infer.QueryInfo | None:
    with _answers("fast_lineage") as seen:
        infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m")
    return seen[0] if seen else None


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", LINEAGE + LINEAGE_FALLBACK + DERIVED + FALLBACK)
def test_the_fast_inference_gives_sqlglots_columns_expressions_and_edges(sql: str, dialect: str) -> None:
    try:
        sqlglot.parse(sql, dialect=dialect)
    except sqlglot.errors.ParseError:
        pytest.skip(f"not {dialect} syntax")
    fast = infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m")
    slow = infer._infer(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m", resolve=None, fast=False)
    assert fast == slow


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "bigquery"])
@pytest.mark.parametrize("sql", LINEAGE)
def test_plain_queries_get_their_lineage_from_the_fast_path(sql: str, dialect: str) -> None:
    answer = _fast_lineage_answer(sql, dialect)
    assert answer is not None and answer.edges


@pytest.mark.parametrize("sql", LINEAGE_FALLBACK + DERIVED + FALLBACK)
def test_queries_whose_lineage_qualify_must_work_out_go_to_sqlglot(sql: str) -> None:
    assert _fast_lineage_answer(sql, "duckdb") is None


def test_a_fast_answer_that_differs_from_sqlglots_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = (infer.Column(name="id", type="VARCHAR", position=1),)
    monkeypatch.setattr(infer, "fast_output_types", lambda query, mapping, dialect: wrong)
    with pytest.raises(FastPathMismatch, match="VARCHAR"):
        infer_query("select id from raw.orders", dialect="duckdb", schema=SCHEMA, fqn="mart.m", lineage=False)


def _bench_engine():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_engine", ROOT / "bench" / "engine.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_engine"] = module
    spec.loader.exec_module(module)
    return module


def test_a_generated_project_types_its_last_layer_the_same_through_fast_ancestors(tmp_path: Path) -> None:
    """The benchmark's generator (CTEs, joins, aggregates, casts over 12 layers): the models of
    the last layer, analysed with every ancestor typed by the fast path, get exactly the columns
    a full build (every model through sqlglot) gives them."""
    engine = _bench_engine()
    models = engine.generate(tmp_path, models=160, depth=8, seed=11)
    files = {
        str(path.relative_to(tmp_path)): path.read_text()
        for path in tmp_path.rglob("*")
        if path.is_file() and ".git" not in path.parts
    }
    config = parse_config(files.get(".tessera.yml", ""))
    source = DictSource(files)
    full = build_snapshot(source, config)
    last = max(m.layer for m in models.values())
    leaves = {
        path
        for path in files
        if path.endswith(".sql") and Path(path).stem in models and models[Path(path).stem].layer == last
    }
    assert leaves
    with _answers("fast_output_types") as answers:
        scoped = build_snapshot(source, config, scope=leaves)
    assert len(answers) > 50 and all(answer is not None for answer in answers)
    checked = 0
    for fqn, asset in scoped.assets.items():
        model = models.get(fqn.rsplit(".", 1)[-1])
        if model is not None and model.layer == last:
            assert asset.columns_known
            assert [(c.name, c.type) for c in asset.columns] == [(c.name, c.type) for c in full.assets[fqn].columns]
            checked += 1
    assert checked == len(leaves)


def test_the_engine_module_needs_no_test_hook_to_run() -> None:
    """Outside the test suite the check is off: the fast path costs one pass, not two."""
    code = "import rules.infer as i; print(i.CHECK_FAST_PATH)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# --- generated plain queries: the fast paths against sqlglot on whatever a grammar makes --------

_TABLES = {"raw.orders": ORDERS, "raw.customers": CUSTOMERS}


@st.composite
def _plain_queries(draw: st.DrawFn) -> str:
    """A plain query over SCHEMA: up to three CTEs, each reading a table or an earlier CTE,
    sometimes joined; projections of columns, casts, functions, arithmetic and aggregates, with
    or without aliases and qualifiers; WHERE / GROUP BY / HAVING over what is in scope."""
    available: dict[str, list[str]] = {name: list(cols) for name, cols in _TABLES.items()}
    ctes: list[str] = []

    def select(sources: list[str]) -> tuple[str, list[str]]:
        aliases = [f"s{i}" for i in range(len(sources))]
        scope = [(alias, column) for alias, source in zip(aliases, sources, strict=True) for column in available[source]]
        single = len(sources) == 1
        outputs: list[str] = []
        names: list[str] = []
        if single and draw(st.booleans()):
            outputs.append("*")
            names.extend(available[sources[0]])
        aggregate = draw(st.booleans())
        for _ in range(draw(st.integers(1, 4))):
            alias, column = draw(st.sampled_from(scope))
            ref = column if single and draw(st.booleans()) else f"{alias}.{column}"
            shape = draw(st.sampled_from(["col", "cast", "upper", "coalesce", "plus", "count", "max", "lower"]))
            expression = {
                "col": ref,
                "cast": f"cast({ref} as {draw(st.sampled_from(['varchar', 'bigint', 'date', 'double', 'decimal(18,2)']))})",
                "upper": f"upper(cast({ref} as varchar))",
                "lower": f"lower(cast({ref} as varchar))",
                "coalesce": f"coalesce({ref}, {ref})",
                "plus": f"{ref} + 1" if column in ("id", "customer_id", "amount") else ref,
                "count": "count(*)" if aggregate else ref,
                "max": f"max({ref})" if aggregate else ref,
            }[shape]
            name = f"o{len(names)}"
            if expression == ref and not draw(st.booleans()) and column not in names and "*" not in outputs:
                name = column
                outputs.append(ref)
            else:
                outputs.append(f"{expression} as {name}")
            names.append(name)
        text = f"select {', '.join(outputs)} from {sources[0]} as {aliases[0]}"
        for source, alias in zip(sources[1:], aliases[1:], strict=True):
            left = draw(st.sampled_from([c for c in available[sources[0]] if c.endswith("id")] or ["id"]))
            text += f" left join {source} as {alias} on {alias}.id = {aliases[0]}.{left}"
        if draw(st.booleans()):
            alias, column = draw(st.sampled_from(scope))
            text += f" where {alias}.{column} is not null"
        if aggregate and "*" not in outputs:
            keys = [o for o in outputs if " as " not in o] or [f"{aliases[0]}.id"]
            text += f" group by {', '.join(keys)}"
        return text, names

    for index in range(draw(st.integers(0, 3))):
        sources = [draw(st.sampled_from(sorted(available)))]
        if draw(st.booleans()):
            sources.append(draw(st.sampled_from(sorted(available))))
        body, names = select(sources)
        if len(set(names)) != len(names):
            continue
        name = f"c{index}"
        ctes.append(f"{name} as ({body})")
        available[name] = names
    sources = [draw(st.sampled_from(sorted(available)))]
    if draw(st.booleans()):
        sources.append(draw(st.sampled_from(sorted(available))))
    body, _names = select(sources)
    return (f"with {', '.join(ctes)} " if ctes else "") + body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=_plain_queries(), dialect=st.sampled_from(["duckdb", "postgres", "snowflake", "bigquery"]))
def test_generated_plain_queries_infer_the_same_fast_and_through_sqlglot(sql: str, dialect: str) -> None:
    for lineage in (False, True):
        fast = infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m", lineage=lineage)
        slow = infer._infer(sql, dialect=dialect, schema=SCHEMA, fqn="mart.m", resolve=None, lineage=lineage, fast=False)
        assert fast == slow, sql


TYPE_TEXTS = [
    "decimal(18,2)", "numeric(38, 0)", "decimal(10)", "varchar(20)", "char(1)", "timestamp(3)", "varchar",
    "int", "array<int>", "struct<a int, b decimal(5,1)>", "decimal(18, 2) /* money */",
]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_type_text_kept_per_type_and_parameters_is_the_text_printing_the_type_gives(dialect: str) -> None:
    """Type texts are kept by (type, dialect, numeric parameters) instead of printed per column:
    each must be what printing that very type gives, on first use and when it is found again."""
    infer._TYPE_TEXT.clear()
    for _round in range(2):
        for text in TYPE_TEXTS:
            try:
                kind = sqlglot.exp.DataType.build(text, dialect=dialect)
            except sqlglot.errors.SqlglotError:
                continue  # a type this dialect does not write
            printed = normalize_type(infer._render(kind, dialect), dialect)
            assert infer._data_type_text(kind, dialect) == printed, text


PHYSICAL_TABLES = [
    "select * from raw.orders o join raw.customers c on c.id = o.customer_id",
    "with a as (select * from raw.orders) select a.id from a where exists (select 1 from raw.customers c where c.id = a.id)",
    "select (select max(id) from raw.customers) as m, cast(x as decimal(10, 2)) as d from raw.orders",
    "select * from (select id from raw.orders) s left join lateral (select 1 from raw.customers) l on true",
    "select id from raw.orders union all select id from raw.customers where id in (select id from raw.refunds)",
    "select * from unnest([1, 2]) as u, raw.orders",
]


@pytest.mark.parametrize("sql", PHYSICAL_TABLES)
def test_the_relations_a_query_reads_are_found_as_walking_every_node_finds_them(sql: str) -> None:
    """``_physical_tables`` skips the leaves of a query (columns, names, literals, types): it must
    still find every relation, in the order a walk over every node gives."""
    query, _problem = infer.parse_query(sql, "duckdb")
    assert query is not None
    every_node = [
        t for t in query.find_all(sqlglot.exp.Table, bfs=False)
        if isinstance(t.this, sqlglot.exp.Identifier) and not infer.is_cte_reference(t)
    ]
    found = infer._physical_tables(query)
    assert [id(t) for t in found] == [id(t) for t in every_node] and found
