"""A model with ``{% %}`` statements renders as its whole compiled template would.

Templates made of the statements dbt models commonly hold (``set``, set blocks, ``if``, simple
``for`` loops, ``do``) are rendered by walking their parsed tree instead of compiling them
(:mod:`rules.jinja_subset`): these tests hold that path to the output, the config and the
dependencies of Jinja's own rendering, to its scoping, and to its errors and their lines."""

from __future__ import annotations

import pytest

from rules import jinja_subset
from rules.dbt_project import _COMPILER, DbtProject, read_project
from rules.sources import DictSource

PROJECT_YML = "name: shop\nvars:\n  region: eu\n  flags: [a, b]\n  enabled_marts: true\n"
MACROS = {
    "macros/money.sql": (
        "{% macro cents(column, scale=100) %}{{ column }} / {{ scale }}{% endmacro %}\n"
        "{% macro pick(values) %}{{ values | join(', ') }}{% endmacro %}\n"
    ),
}
MODELS = {
    "orders": "{{ config(materialized='view') }}\nselect 1 as id\n",
    "branches": (
        "{{ config(enabled=var('enabled_marts', false)) }}\n"
        "{% if target.type == 'bigquery' %}\nselect safe_cast(id as string) as id\n"
        "{% elif target.type in ('snowflake', 'postgres') and not var('region') == 'us' %}\n"
        "select cast(id as varchar) as id, '{{ var('region') | upper }}' as region\n"
        "{% else %}\nselect id\n{% endif %}\nfrom {{ ref('orders') }}\n"
    ),
    "sets": (
        "{% set columns = ['a', 'b'] + ['c'] %}\n"
        "{%- set label -%}\n  {{ cents('amount', scale=1000) }}\n{%- endset -%}\n"
        "{% set _private = 'p' %}\n"
        "select {{ columns | join(', ') }}, {{ label }} as amount, '{{ _private ~ columns[0] }}' as tag,\n"
        "  {{ 'x' if columns | length > 2 else 'y' }} as size, {{ {'k': 1}['k'] }} as one,\n"
        "  {{ -3 + 2 * 4 // 3 % 5 }} as math, {{ 1 < 2 < 3 }} as chain, {{ 'ab' | replace('a', 'z') }} as r\n"
        "from {{ ref('orders') }}\n"
    ),
    "loops": (
        "{{ config(materialized='table', tags=['x']) }}\n"
        "select\n{% for flag in var('flags') %}\n  max(case when f = '{{ flag }}' then 1 end) as has_{{ flag }},\n"
        "{% endfor %}\n{% for name, value in [('one', 1), ('two', 2)] %}  {{ value }} as {{ name }},\n{% endfor %}"
        "  1 as id\nfrom {{ ref('orders') }} join {{ source('raw', 'flags') }} using (id)\n"
    ),
    "does": (
        "{% set parts = [] %}{% do parts.append('a') %}{% do parts.append(this.identifier) %}"
        "{% do config(materialized='incremental', unique_key=parts) %}"
        "select '{{ parts | join('.') }}' as p from {{ ref('orders') }}\n"
    ),
    "scoping": (
        "{% set later %}{{ afterwards }}|{{ region }}{% endset %}"
        "{% for i in [1] %}[{{ afterwards }}]{% endfor %}"
        "{% set afterwards = 'now' %}{% set region = var('region') %}"
        "select '{{ later }}' as l, '{{ afterwards }}' as a, '{{ missing_name }}' as m from {{ ref('orders') }}\n"
    ),
    "branch_sets": (
        "{% if var('region') == 'eu' %}{% set zone = 'cet' %}{% else %}{% set zone = 'est' %}{% endif %}"
        "{% if false %}{% set only_one = 1 %}{% endif %}"
        "select '{{ zone }}' as zone, '{{ only_one }}' as o from {{ ref('orders') }}\n"
    ),
}


def project(models: dict[str, str], macros: dict[str, str] = MACROS) -> DbtProject:
    files = {"dbt_project.yml": PROJECT_YML, **macros, **{f"models/{n}.sql": t for n, t in models.items()}}
    return read_project(DictSource(files), ".", dialect="postgres")


def whole_template(shop: DbtProject, fqn: str) -> tuple[str, dict[str, object], list[str]]:
    """What Jinja renders from the model's whole compiled template, and the config and refs it
    records."""
    shop.render_jinja(fqn)  # sets up the model's `this`, as a rendering does
    recorder = shop._recorder
    recorder.config, recorder.depends_on = {}, []
    sql = shop._environment().from_string(shop.models[fqn].raw_sql).render()
    return sql.strip(), dict(recorder.config), list(dict.fromkeys(recorder.depends_on))


def walked(shop: DbtProject, fqn: str) -> tuple[str, dict[str, object], list[str]]:
    """What the walk itself renders (no fallback to Jinja: an error here fails the test), and the
    config and refs it records."""
    program = jinja_subset.prepare(_COMPILER, shop.models[fqn].raw_sql)
    assert program is not None, "the template is not in the subset the walk renders"
    shop.render_jinja(fqn)  # sets up the model's `this`, as a rendering does
    recorder = shop._recorder
    recorder.config, recorder.depends_on = {}, []
    sql = jinja_subset.render(program, shop._environment())
    return sql.strip(), dict(recorder.config), list(dict.fromkeys(recorder.depends_on))


@pytest.mark.parametrize("fqn", sorted(set(MODELS) - {"orders"}))
def test_each_model_with_statements_renders_without_compiling_as_its_whole_template_does(fqn: str) -> None:
    shop = project(MODELS)
    expected = whole_template(shop, fqn)
    assert walked(shop, fqn) == expected
    rendered = shop.render_jinja(fqn)
    assert (rendered.sql, dict(rendered.config), list(rendered.depends_on)) == expected
    assert rendered.problems == ()


def test_statements_render_branches_sets_loops_and_config() -> None:
    shop = project(MODELS)
    assert shop.render_jinja("branches").sql == (
        "select cast(id as varchar) as id, 'EU' as region\n\nfrom orders"
    )
    assert shop.render_jinja("branches").config == {"enabled": True}
    loops = shop.render_jinja("loops")
    assert loops.sql.splitlines()[1:4] == [
        "", "  max(case when f = 'a' then 1 end) as has_a,", "",
    ]
    assert "  1 as one,\n  2 as two,\n  1 as id" in loops.sql
    assert (dict(loops.config), loops.depends_on) == ({"materialized": "table", "tags": ["x"]}, ("orders", "raw.flags"))
    does = shop.render_jinja("does")
    assert does.sql == "select 'a.does' as p from orders"
    assert does.config == {"materialized": "incremental", "unique_key": ["a", "does"]}


def test_a_name_set_later_is_undefined_where_a_loop_or_set_block_reads_it_first() -> None:
    # Jinja's scoping: inside a loop or a set block, a name the template sets later is its own
    # (still unset) variable, not looked up; elsewhere an unset name is looked up in the context
    rendered = project(MODELS).render_jinja("scoping")
    assert rendered.sql == "[]select '|' as l, 'now' as a, '' as m from orders"
    assert project(MODELS).render_jinja("branch_sets").sql == "select 'cet' as zone, '' as o from orders"


def test_a_list_set_in_a_template_is_a_new_list_for_each_rendering() -> None:
    shop = project(MODELS)
    first = shop.render_jinja("does")
    second = shop.render_jinja("does")
    assert first.config["unique_key"] == second.config["unique_key"] == ["a", "does"]


@pytest.mark.parametrize(
    "template",
    [
        "{% for x in [1, 2] %}{{ loop.index }}{% endfor %}",
        "{% for x in [1, 2] %}{% set y = x %}{% endfor %}",
        "{% for x in [1, 2] if x > 1 %}{{ x }}{% endfor %}",
        "{% for x in [] %}{{ x }}{% else %}none{% endfor %}",
        "{% macro m() %}1{% endmacro %}{{ m() }}",
        "{% call cents('a') %}body{% endcall %}",
        "{% if x is defined %}1{% endif %}",
        "{% filter upper %}text{% endfilter %}",
        "{% set a, b = 1, 2 %}{{ a }}",
        "{% set x | upper %}text{% endset %}{{ x }}",
        "{% with a = 1 %}{{ a }}{% endwith %}",
        "{{ 'abc'[1:] }}",
        "{{ 1 if true }}",
        "{{ f(*args) }}",
        "{% raw %}{{ x }}{% endraw %}{% if true %}1{% endif %}{{ self }}",
        "{% if true %}{% endif %",
    ],
)
def test_what_the_walk_does_not_evaluate_exactly_is_left_to_the_compiled_template(template: str) -> None:
    assert jinja_subset.prepare(_COMPILER, template) is None


def test_those_templates_still_render_through_jinja() -> None:
    rendered = project({**MODELS, "m": "{% for x in [1, 2] %}{{ loop.index }}{% endfor %} as n"}).render_jinja("m")
    assert (rendered.sql, rendered.problems) == ("12 as n", ())


def test_a_failure_in_a_statement_is_reported_on_its_line_as_the_whole_template_would() -> None:
    model = (
        "{% set n = 3 %}\nselect {{ n }} as a,\n{% if var('region') == 'eu' %}\n"
        "  {{ cents('b') }} as b, {{ n / 0 }} as c\n{% endif %}\nfrom {{ ref('orders') }}\n"
    )
    shop = project({**MODELS, "broken": model})
    assert jinja_subset.prepare(_COMPILER, model) is not None
    rendered = shop.render_jinja("broken")
    assert rendered.sql == ""
    assert [(p.message, p.line) for p in rendered.problems] == [
        ("Jinja rendering failed: ZeroDivisionError: division by zero", 4)
    ]
    assert rendered.depends_on == ("orders",)  # the refs found in the raw SQL, as for any failure


def test_a_statement_that_does_not_parse_is_a_syntax_error_on_its_line() -> None:
    # Jinja names the line of the block left open
    rendered = project({**MODELS, "bad": "select 1\n{% if true %}\nfrom x\n"}).render_jinja("bad")
    assert [(p.message.split(":")[0], p.line) for p in rendered.problems] == [("Jinja syntax error", 2)]
    assert "The innermost block that needs to be closed is 'if'" in rendered.problems[0].message


def test_a_return_inside_a_statement_is_the_models_output() -> None:
    model = "{% if true %}{% do return('select 2') %}{% endif %}select 1"
    assert project({**MODELS, "early": model}).render_jinja("early").sql == "select 2"


def test_a_filter_on_constants_is_folded_with_the_compiling_environment_as_jinja_does() -> None:
    # Jinja computes `'true' | as_bool` while compiling, with the compiling environment's filter
    # (a pass-through there), not the project's: the walk must give the same output
    model = "{% if true %}{{ 'true' | as_bool }}|{{ var('region') | as_bool }}{% endif %}"
    shop = project({**MODELS, "folded": model})
    assert walked(shop, "folded")[0] == whole_template(shop, "folded")[0]
    assert shop.render_jinja("folded").sql == whole_template(shop, "folded")[0]
