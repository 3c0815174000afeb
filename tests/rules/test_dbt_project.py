"""Reading a dbt project from the repository alone: properties, configs, Jinja, ownership."""

from __future__ import annotations

import pytest

from rules.dbt_project import find_projects, load_project, read_project
from rules.model import Snapshot
from rules.sources import DictSource
from tests.rules.dbt_data import project_files

PROJECT_YML = "name: tiny\nmodels:\n  tiny:\n    +materialized: view\n"


@pytest.fixture(scope="module")
def harbor() -> Snapshot:
    return load_project(DictSource(project_files("harbor")), "analytics", dialect="postgres")


def tiny(files: dict[str, str]) -> Snapshot:
    return load_project(DictSource({"dbt_project.yml": PROJECT_YML, **files}), ".", dialect="postgres")


def test_projects_are_found_by_their_dbt_project_file_outside_packages_and_build_output() -> None:
    paths = [
        "dbt_project.yml",
        "analytics/dbt_project.yml",
        "analytics/dbt_packages/dbt_utils/dbt_project.yml",
        "analytics/target/dbt_project.yml",
        "other/models/x.sql",
    ]
    assert find_projects(paths) == [".", "analytics"]


def test_every_model_source_seed_exposure_and_group_of_the_project_is_read(harbor: Snapshot) -> None:
    assert {fqn: a.kind for fqn, a in harbor.assets.items()} == {
        "stg_orders": "model",
        "stg_customers": "model",
        "fct_revenue": "model",
        "dim_customers.v1": "model",
        "dim_customers.v2": "model",
        "customer_revenue": "model",
        "shop.orders": "source",
        "shop.customers": "source",
        "country_codes": "seed",
    }
    assert set(harbor.exposures) == {"revenue_dashboard"}
    assert set(harbor.groups) == {"platform", "finance"}
    assert harbor.problems == []


def test_refs_render_as_model_names_and_sources_as_source_dot_table(harbor: Snapshot) -> None:
    sql = harbor.assets["customer_revenue"].sql or ""
    assert "from dim_customers_v2 as d" in sql  # unversioned ref means the latest version
    assert "join dim_customers_v1 as d1" in sql  # ref('m', v=1)
    assert "join fct_revenue as r" in sql  # two-argument package ref
    assert "from shop.orders" in (harbor.assets["stg_orders"].sql or "")
    assert harbor.assets["customer_revenue"].depends_on == (
        "dim_customers.v2",
        "dim_customers.v1",
        "fct_revenue",
    )


def test_project_macros_vars_and_is_incremental_are_rendered_like_dbt(harbor: Snapshot) -> None:
    sql = harbor.assets["stg_orders"].sql or ""
    assert "(amount_cents / 100)::numeric(16, 2) as amount" in sql
    assert "where amount_cents >= 0" in sql
    assert "max(ordered_at)" not in sql  # the is_incremental() branch is off
    assert "{{" not in sql and "{%" not in sql


def test_folder_configs_yaml_config_and_sql_config_apply_in_dbt_order(harbor: Snapshot) -> None:
    fct = harbor.assets["fct_revenue"]
    assert fct.materialized == "table"  # marts folder
    assert fct.meta["tier"] == "gold"  # folder +meta merged with the model's meta
    assert fct.unique_key == ("order_id",)  # config() in the SQL
    assert fct.access == "public"
    assert fct.group == "finance"
    assert fct.contract_enforced
    assert fct.compatibility == "full"
    assert harbor.assets["stg_orders"].materialized == "view"
    assert harbor.assets["stg_orders"].tags == ("staging",)
    assert harbor.assets["stg_customers"].group == "platform"  # folder +group


def test_owner_is_the_most_specific_of_tessera_owner_group_owner_and_meta_owner(harbor: Snapshot) -> None:
    assert harbor.assets["fct_revenue"].owner == "@harbor/finance-data"  # meta.tessera.owner beats group
    assert harbor.assets["stg_customers"].owner == "platform@harbor.io"  # group owner e-mail
    assert harbor.assets["customer_revenue"].owner == "growth@harbor.io"  # meta.owner
    assert harbor.groups["finance"].owner == "Finance Data"  # a group with only a name


def test_declared_columns_carry_types_tests_and_constraints(harbor: Snapshot) -> None:
    fct = harbor.assets["fct_revenue"]
    order_id = fct.column("order_id")
    assert order_id is not None and order_id.declared_type and order_id.type == "INT"
    assert order_id.nullable is False and "not_null" in order_id.constraints
    assert fct.constraints == ("primary_key(order_id)",)
    revenue = fct.column("revenue")
    assert revenue is not None and revenue.description == "Order amount in dollars."
    stg = harbor.assets["stg_orders"]
    status = stg.column("status")
    assert status is not None and status.constraints == ("accepted_values:placed,returned,shipped",)
    assert status.type == "UNKNOWN" and not status.declared_type
    assert stg.column("order_id").constraints == ("unique", "not_null")  # type: ignore[union-attr]


def test_versions_get_their_own_assets_with_included_and_excluded_columns(harbor: Snapshot) -> None:
    v1, v2 = harbor.assets["dim_customers.v1"], harbor.assets["dim_customers.v2"]
    assert [c.name for c in v1.columns] == ["customer_id", "email", "plan_code"]
    assert [c.name for c in v2.columns] == ["customer_id", "email"]
    assert (v1.version, v1.latest_version, v1.deprecation_date) == ("1", "2", "2027-01-31")
    assert (v2.version, v2.deprecation_date) == ("2", None)
    assert v1.path == "analytics/models/marts/dim_customers_v1.sql"
    assert v1.relation == "dim_customers_v1"


def test_exposures_resolve_refs_and_declared_columns(harbor: Snapshot) -> None:
    exposure = harbor.exposures["revenue_dashboard"]
    assert exposure.depends_on == ("fct_revenue", "dim_customers.v2")
    assert exposure.owner == "growth@harbor.io"
    assert exposure.owner_name == "Growth Analytics"
    assert exposure.columns == {"fct_revenue": ("revenue", "plan_code")}
    assert exposure.path == "analytics/models/marts/_marts.yml"


def test_sources_have_declared_columns_and_the_yaml_line_of_each(harbor: Snapshot) -> None:
    orders = harbor.assets["shop.orders"]
    assert [(c.name, c.type) for c in orders.columns][:3] == [
        ("id", "INT"),
        ("customer_id", "INT"),
        ("amount_cents", "BIGINT"),
    ]
    assert orders.owner == "platform@harbor.io"
    assert orders.relation == "raw_shop.orders"  # the table in the warehouse, for SQL elsewhere
    assert orders.line == 7
    assert orders.columns[0].line == 9


def test_a_jinja_syntax_error_is_a_problem_on_its_line_and_other_models_still_load() -> None:
    snapshot = tiny(
        {
            "models/good.sql": "select 1 as id",
            "models/bad.sql": "select 1 as id\n{% if %}\nfrom {{ ref('good') }}",
        }
    )
    assert "good" in snapshot.assets
    assert [(p.path, p.line) for p in snapshot.problems] == [("models/bad.sql", 2)]
    assert "Jinja" in snapshot.problems[0].message


def test_malformed_yaml_is_a_problem_with_its_line_not_a_crash() -> None:
    snapshot = tiny(
        {"models/a.sql": "select 1 as id", "models/schema.yml": "models:\n  - name: a\n    columns: [\n"}
    )
    assert "a" in snapshot.assets
    assert len(snapshot.problems) == 1
    assert snapshot.problems[0].path == "models/schema.yml"
    assert snapshot.problems[0].line is not None


def test_unknown_macros_filters_and_adapter_calls_render_as_nothing() -> None:
    snapshot = tiny(
        {
            "models/a.sql": (
                "{% set cols = adapter.get_columns_in_relation(ref('b')) %}\n"
                "select {{ dbt_utils.not_a_known_macro('x', ['a']) }} 1 as id, "
                "'{{ var('missing', 'dflt') | my_filter }}' as v, '{{ env_var('HOME', 'home') }}' as h "
                "from {{ ref('b') }} {{ limit_rows() }}"
            ),
            "models/b.sql": "select 1 as x",
        }
    )
    assert snapshot.problems == []
    assert snapshot.assets["a"].sql == "select  1 as id, 'dflt' as v, 'home' as h from b"
    assert snapshot.assets["a"].depends_on == ("b",)


def test_macros_that_return_values_work_like_dbt_return() -> None:
    snapshot = tiny(
        {
            "macros/m.sql": "{% macro status_list() %}{{ return(['a', 'b']) }}{% endmacro %}",
            "models/a.sql": "select {% for s in status_list() %}'{{ s }}' as s_{{ s }}{{ ',' if not loop.last }}{% endfor %}",
        }
    )
    assert snapshot.assets["a"].sql == "select 'a' as s_a,'b' as s_b"


def test_templates_cannot_reach_python_internals() -> None:
    snapshot = tiny({"models/evil.sql": "select '{{ ''.__class__.__mro__[1].__subclasses__() }}' as x"})
    assert snapshot.assets["evil"].sql == "select '' as x"  # the sandbox hides unsafe attributes


def test_a_disabled_model_is_kept_but_marked_disabled() -> None:
    snapshot = tiny({"models/a.sql": "{{ config(enabled=false) }}select 1 as id"})
    assert snapshot.assets["a"].enabled is False


def test_properties_for_a_model_without_sql_are_reported() -> None:
    snapshot = tiny({"models/a.sql": "select 1 as id", "models/s.yml": "models:\n  - name: ghost\n"})
    assert [(p.path, p.line) for p in snapshot.problems] == [("models/s.yml", 2)]
    assert "ghost" in snapshot.problems[0].message


def test_the_checksum_changes_with_sql_or_properties_but_not_with_unrelated_files() -> None:
    base = {"models/a.sql": "select 1 as id", "models/s.yml": "models:\n  - name: a\n    description: x\n"}
    first = tiny(base).assets["a"].checksum
    assert tiny({**base, "models/b.sql": "select 2 as id"}).assets["a"].checksum == first
    assert tiny({**base, "models/a.sql": "select 2 as id"}).assets["a"].checksum != first
    assert (
        tiny({**base, "models/s.yml": "models:\n  - name: a\n    description: y\n"}).assets["a"].checksum
        != first
    )


def test_cheap_refs_from_the_raw_sql_match_what_rendering_finds() -> None:
    project = read_project(DictSource(project_files("harbor")), "analytics", dialect="postgres")
    for fqn in project.models:
        assert set(project.dependencies(fqn)) == set(project.render(fqn).depends_on), fqn


def test_a_project_without_dbt_project_yml_contents_still_reads_its_models() -> None:
    snapshot = load_project(
        DictSource({"dbt_project.yml": "", "models/a.sql": "select 1 as id"}), ".", dialect="duckdb"
    )
    assert snapshot.assets["a"].materialized == "view"
    assert snapshot.assets["a"].dialect == "duckdb"


def test_models_that_only_ref_and_source_render_the_same_without_jinja() -> None:
    files = {
        "dbt_project.yml": PROJECT_YML,
        "models/a.sql": "select 1 as id",
        "models/b.sql": "select * from {{ ref('a') }} join {{ source('raw', 'T') }} using (id)",
        "models/c.sql": 'select * from {{ ref("tiny", "b") }}\n-- {{ ref(\'a\') }}',
        "models/d.sql": "select {{ var('x', 1) }} as id from {{ ref('a') }}",
        "models/e.sql": "select 1 as id from {{- ref('a') -}}",
    }
    project = read_project(DictSource(files), ".", dialect="postgres")
    fast = {fqn for fqn in project.models if project._render_simple(project.models[fqn]) is not None}
    assert fast == {"a", "b", "c"}
    for fqn in project.models:
        assert project.render(fqn).sql == project.render_jinja(fqn).sql, fqn
        assert project.render(fqn).depends_on == project.render_jinja(fqn).depends_on, fqn


ODD_PROPERTIES = [
    "models: {a: b}",
    "models: [a, 1, null]",
    "models:\n  - name: a\n    columns: [1, {name: 2}, {name: null}]",
    "models:\n  - name: a\n    versions: [{v: 1}, {v: null}, 3]\n    latest_version: 9",
    "models:\n  - name: a\n    columns: [{name: id, tests: [{accepted_values: null}, {relationships: 3}, 5]}]",
    "models:\n  - name: a\n    config: [1]\n    meta: x\n    group: [g]\n    access: 7",
    "models:\n  - name: a\n    config: {contract: true, enabled: 'no', tags: 5, unique_key: [1, id]}",
    "exposures: [{name: e, depends_on: 3, owner: x, meta: {tessera: {columns: 7}}}]",
    "sources: [{name: s, tables: [{name: t, columns: {a: b}}, 3]}]",
    "a: !!python/object:os.system 'echo'",
]
ODD_SQL = [
    "{{ config(materialized=3, contract={'enforced': 'x'}) }} select 1 as id",
    "{{ ref() }} {{ source('a') }}",
    "{{ 1/0 }}",
    "{% for i in range(10**9) %}{% endfor %}",
]


@pytest.mark.parametrize("properties", ODD_PROPERTIES)
@pytest.mark.parametrize("sql", ODD_SQL)
def test_odd_properties_and_templates_never_raise_and_keep_the_model(properties: str, sql: str) -> None:
    snapshot = tiny({"models/a.sql": sql, "models/s.yml": properties, "macros/x.sql": "{% macro x( %}"})
    assert any(asset.name == "a" for asset in snapshot.assets.values())
    assert all(p.path in ("models/a.sql", "models/s.yml", "macros/x.sql") for p in snapshot.problems)


def test_cross_database_macros_render_as_sql_that_parses() -> None:
    snapshot = tiny(
        {
            "models/b.sql": "select 1 as id, 'x' as name",
            "models/a.sql": (
                "select cast(id as {{ dbt.type_string() }}) as id_text,"
                " {{ dbt_utils.generate_surrogate_key(['id', 'name']) }} as key,"
                " {{ dbt.date_trunc('day', 'current_date') }} as day,"
                " {{ type_timestamp() }} as ts_type"
                " from {{ ref('b') }}"
            ),
            "models/c.sql": "select {{ dbt_utils.star(from=ref('b'), except=['name']) }} from {{ ref('b') }}",
        }
    )
    assert snapshot.assets["a"].sql == (
        "select cast(id as varchar) as id_text,"
        " md5(concat(coalesce(cast(id as varchar), '_dbt_utils_surrogate_key_null_'), '-',"
        " coalesce(cast(name as varchar), '_dbt_utils_surrogate_key_null_'))) as key,"
        " date_trunc('day', current_date) as day,"
        " timestamp as ts_type from b"
    )
    assert snapshot.assets["c"].depends_on == ("b",)  # star's expansion: tests/rules/cases/package_macros.yml


def test_a_huge_model_file_is_a_problem_not_a_stall() -> None:
    huge = "select 1 as id, " + ", ".join(f"'{i:07}' as c{i}" for i in range(120_000)) + " "
    snapshot = tiny(
        {
            "models/a.sql": huge,
            "models/s.yml": "models:\n  - name: a\n    description: '" + "y" * 2_100_000 + "'\n",
        }
    )
    assert "a" in snapshot.assets and not snapshot.assets["a"].sql
    assert sorted(p.path for p in snapshot.problems) == ["models/a.sql", "models/s.yml"]
    assert all("not analysed" in p.message for p in snapshot.problems)


def test_a_model_padded_past_the_limit_with_comments_is_read_as_its_statement() -> None:
    padded = "select 1 as id -- " + "x" * 2_100_000 + "\n/* " + " " * 100 + " */"
    snapshot = tiny({"models/a.sql": padded})
    assert snapshot.assets["a"].sql.startswith("select 1 as id")
    assert "xxxx" not in snapshot.assets["a"].sql
    assert snapshot.problems == []


def test_a_jinja_syntax_error_in_dbt_project_yml_is_a_problem_on_its_line_and_models_still_load() -> None:
    project = (
        "name: tiny\n"
        "vars:\n"
        "  region: \"{{ env_var('REGION' }}\"\n"
        "models:\n"
        "  tiny:\n"
        "    +materialized: table\n"
        "    +schema: \"{{ 'marts' if target.name == 'prod' \"\n"
    )
    snapshot = load_project(DictSource({"dbt_project.yml": project, "models/a.sql": "select 1 as id"}), ".", dialect="postgres")
    assert snapshot.assets["a"].materialized == "table"
    assert [(p.path, p.line) for p in snapshot.problems] == [("dbt_project.yml", 3), ("dbt_project.yml", 7)]
    assert "vars.region" in snapshot.problems[0].message and "Jinja" in snapshot.problems[0].message


def test_valid_jinja_in_dbt_project_yml_is_no_problem() -> None:
    project = "name: tiny\nmodels:\n  tiny:\n    +schema: \"{{ env_var('SCHEMA', 'marts') }}\"\n"
    snapshot = load_project(DictSource({"dbt_project.yml": project, "models/a.sql": "select 1 as id"}), ".", dialect="postgres")
    assert snapshot.problems == []


def test_a_snapshot_declared_in_yaml_reads_every_column_of_its_relation_plus_dbts() -> None:
    snapshot = tiny(
        {
            "models/orders.sql": "select 1 as order_id, 'web' as channel",
            "snapshots/snapshots.yml": (
                "snapshots:\n"
                "  - name: orders_snapshot\n"
                "    relation: ref('orders')\n"
                "    config: {unique_key: order_id, strategy: check, check_cols: all}\n"
                "  - name: not_a_relation\n"
                "    relation: \"{{ var('x') }}\"\n"
            ),
        }
    )
    asset = snapshot.assets["orders_snapshot"]
    assert (asset.kind, asset.materialized, asset.path, asset.line) == ("snapshot", "snapshot", "snapshots/snapshots.yml", 2)
    assert asset.depends_on == ("orders",)
    assert asset.sql is not None and "orders" in asset.sql
    assert "not_a_relation" not in snapshot.assets
    assert [(p.path, p.line) for p in snapshot.problems] == [("snapshots/snapshots.yml", 5)]
    assert "must be a ref() or source()" in snapshot.problems[0].message
