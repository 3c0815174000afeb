"""A model made of text and ``{{ }}`` expressions renders as its whole template would.

Such a model is rendered one expression at a time, and the commonest expressions (a name, an
attribute, a call with literal arguments) without compiling them: these tests hold that path to
the output, the config and the dependencies of Jinja's own rendering, and to its errors."""

from __future__ import annotations

import pytest

from rules.dbt_project import DbtProject, read_project
from rules.sources import DictSource

PROJECT_YML = "name: shop\nvars:\n  region: eu\n  cutoff: \"{{ '2024' ~ '-01-01' }}\"\n"
MACROS = {
    "macros/money.sql": (
        "{% macro cents(column, scale=100) %}{{ column }} / {{ scale }}{% endmacro %}\n"
        "{% macro label(values) %}{{ values | join('|') }}{% endmacro %}\n"
    ),
}
MODELS = {
    "calls": (
        "{{ config(materialized='table', tags=['finance', 'daily'], meta={'owner': 'ops'}) }}\n"
        "select {{ cents('amount') }} as dollars, {{ cents('fee', scale=1000) }} as fee_k,\n"
        "  cast(id as {{ dbt.type_string() }}) as id, '{{ var(\"region\") }}' as region,\n"
        "  '{{ label(['a', 'b']) }}' as labels, '{{ var('cutoff') }}' as cutoff\n"
        "from {{ ref('orders') }} join {{ source('raw', 'payments') }} using (id)\n"
    ),
    "names": (
        "select '{{ this }}' as me, '{{ target.name }}' as t, '{{ missing_name }}' as m, '{{ self }}' as s,\n"
        "  '{{ loop }}' as l from {{ ref('orders') }}\n"
    ),
    "nested": "select {{ cents(var('region')) }} as x, {{ 'a' ~ 'b' }} as y from {{ ref('orders') }}\n",
    "orders": "{{ config(materialized='view') }}\nselect 1 as id\n",
}


def project(models: dict[str, str], macros: dict[str, str] = MACROS) -> DbtProject:
    files = {"dbt_project.yml": PROJECT_YML, **macros, **{f"models/{n}.sql": t for n, t in models.items()}}
    return read_project(DictSource(files), ".", dialect="postgres")


def whole_template(shop: DbtProject, fqn: str) -> tuple[str, dict[str, object], list[str]]:
    """What Jinja renders from the model's whole template, and the config and refs it records."""
    shop.render_jinja(fqn)  # sets up the model's `this`, as a rendering does
    recorder = shop._recorder
    recorder.config, recorder.depends_on = {}, []
    sql = shop._environment().from_string(shop.models[fqn].raw_sql).render()
    return sql.strip(), dict(recorder.config), list(dict.fromkeys(recorder.depends_on))


@pytest.mark.parametrize("fqn", ["calls", "names", "nested", "orders"])
def test_each_model_renders_as_its_whole_template_does(fqn: str) -> None:
    shop = project(MODELS)
    rendered = shop.render_jinja(fqn)
    assert (rendered.sql, dict(rendered.config), list(rendered.depends_on)) == whole_template(shop, fqn)
    assert rendered.problems == ()


def test_calls_with_literal_arguments_render_macros_vars_config_and_refs() -> None:
    rendered = project(MODELS).render_jinja("calls")
    assert rendered.sql == (
        "select amount / 100 as dollars, fee / 1000 as fee_k,\n"
        "  cast(id as varchar) as id, 'eu' as region,\n"
        "  'a|b' as labels, '2024-01-01' as cutoff\n"
        "from orders join raw.payments using (id)"
    )
    assert dict(rendered.config) == {"materialized": "table", "tags": ["finance", "daily"], "meta": {"owner": "ops"}}
    assert rendered.depends_on == ("orders", "raw.payments")
    assert rendered.first_line == 2


def test_a_list_argument_is_a_new_list_for_each_model() -> None:
    shop = project({"a": "{{ config(tags=['x']) }}select 1", "b": "{{ config(tags=['x']) }}select 2"})
    first = shop.render_jinja("a")
    first.config["tags"].append("changed by a reader")
    assert shop.render_jinja("b").config == {"tags": ["x"]}


def test_an_expression_that_fails_is_reported_on_its_line_as_the_whole_template_would() -> None:
    shop = project({"broken": "select 1 as id,\n  {{ cents('a') }} as b\nfrom {{ ref('orders') }}\nwhere {{ 1 / 0 }}\n"})
    rendered = shop.render_jinja("broken")
    assert rendered.sql == ""
    assert [(p.message, p.line) for p in rendered.problems] == [
        ("Jinja rendering failed: ZeroDivisionError: division by zero", 4)
    ]


def test_an_expression_that_does_not_parse_is_a_syntax_error_on_its_line() -> None:
    rendered = project({"bad": "select 1\nfrom {{ ref('orders' }}\n"}).render_jinja("bad")
    assert len(rendered.problems) == 1
    assert rendered.problems[0].message.startswith("Jinja syntax error")
    assert rendered.problems[0].line == 2


def test_a_return_at_the_top_of_a_model_is_its_output() -> None:
    assert project({"early": "select 1 {{ return('select 2') }} from x"}).render_jinja("early").sql == "select 2"


def test_a_macro_edited_on_one_side_renders_its_own_text_on_each() -> None:
    model = {"m": "select {{ cents('amount') }} as x from {{ ref('orders') }}", **MODELS}
    before = project(model).render_jinja("m").sql
    edited = {"macros/money.sql": "{% macro cents(column) %}{{ column }} / 1000.0{% endmacro %}"}
    after = project(model, edited).render_jinja("m").sql
    assert (before, after) == ("select amount / 100 as x from orders", "select amount / 1000.0 as x from orders")


def test_whitespace_control_comments_and_blocks_render_as_jinja_does() -> None:
    models = {
        "trimmed": "select\n    {{- ' 1 as a' -}}\n  , 2 as b",
        "commented": "select 1 as a {# a note #} from {{ ref('orders') }}",
        "blocks": "{% set n = 3 %}select {{ n }} as a from {{ ref('orders') }}",
    }
    shop = project({**MODELS, **models})
    assert shop.render_jinja("trimmed").sql == "select 1 as a, 2 as b"
    assert shop.render_jinja("commented").sql == "select 1 as a  from orders"
    assert shop.render_jinja("blocks").sql == "select 3 as a from orders"


def test_a_macro_file_that_cannot_compile_is_a_problem_and_its_macros_are_not_defined() -> None:
    macros = {
        **MACROS,
        "macros/loops.sql": "{% macro fine() %}1{% endmacro %}\n{% macro stray() %}{% break %}{% endmacro %}\n",
    }
    shop = project({"m": "select {{ fine() }} as a, {{ cents('b') }} as b from {{ ref('orders') }}", **MODELS}, macros)
    assert shop.render_jinja("m").sql == "select  as a, b / 100 as b from orders"
    assert [(p.path, p.message.split(":")[0]) for p in shop.problems] == [
        ("macros/loops.sql", "macro file could not be loaded")
    ]


def test_a_macro_that_parses_but_cannot_compile_fails_its_caller_with_the_macros_file_and_line() -> None:
    macros = {**MACROS, "macros/loops.sql": "{% macro each() %}\n{% for loop in [1] %}x{% endfor %}{% endmacro %}\n"}
    shop = project({"m": "select {{ each() }} as a from {{ ref('orders') }}", **MODELS}, macros)
    rendered = shop.render_jinja("m")
    assert rendered.sql == ""
    assert [(p.path, p.line) for p in rendered.problems] == [("models/m.sql", None), ("macros/loops.sql", 2)]
    assert rendered.problems[1].message == (
        "macro each cannot be compiled: Can't assign to special loop variable in for-loop target"
    )


def test_a_macro_is_compiled_when_first_called_and_the_same_text_renders_alike_in_every_project() -> None:
    model = {"m": "select {{ cents('amount') }} as x from {{ ref('orders') }}", **MODELS}
    base, head = project(model), project(model)
    assert base.render_jinja("m").sql == head.render_jinja("m").sql == "select amount / 100 as x from orders"
    assert base.problems == head.problems == []
