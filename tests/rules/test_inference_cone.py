"""The change's cone is inferred only where an answer can depend on it, with the same answers as
inferring every model downstream of the change on each side."""

from __future__ import annotations

import datetime

import pytest

from rules import build, diff, impact
from rules.analyze import analyze
from rules.config import parse_config
from rules.model import PROPERTIES_AT, Analysis, Config
from rules.sources import DictSource
from tests.shop import drop_coupon_code, drop_discounts, retype_customer_id, shop_files

TODAY = datetime.date(2026, 11, 25)

CONFIG_TEXT = "dbt: {dialect: postgres}\n"

OWNERS = """\
models:
  - name: orders
    meta: {owner: core}
  - name: by_label
    meta: {owner: growth}
  - name: labels
    meta: {owner: growth}
  - name: amounts
    meta: {owner: finance}
  - name: doubled
    meta: {owner: finance}
  - name: tripled
    meta: {owner: finance}
"""

READERS = {
    "dbt_project.yml": "name: p\n",
    ".tessera.yml": CONFIG_TEXT,
    "models/owners.yml": OWNERS,
    "models/orders.sql": "select 1 as id, 'x' as label, 2 as amount",
    # reads the changed model, but not the column that changes
    "models/labels.sql": "select id, label from {{ ref('orders') }}",
    "models/by_label.sql": "select label, count(*) as n from {{ ref('labels') }} group by label",
    # reads the column that changes, and passes it on
    "models/amounts.sql": "select id, amount * 2 as doubled from {{ ref('orders') }}",
    "models/doubled.sql": "select doubled from {{ ref('amounts') }}",
    "models/tripled.sql": "select doubled * 3 as tripled from {{ ref('doubled') }}",
    # reads the change through `amounts`, and an unaffected model for its columns only
    "models/report.sql": "select a.doubled, b.n from {{ ref('amounts') }} a cross join {{ ref('by_label') }} b",
    "models/exposures.yml": (
        "exposures:\n  - name: board\n    type: dashboard\n    owner: {name: growth}\n"
        "    depends_on: [ref('tripled')]\n"
    ),
}


PROPS = """\
models:
  - name: orders
    columns:
      - name: amount
        description: the amount
        data_type: int
        data_tests:
          - not_null: {config: {severity: warn}}
      - name: label
  - name: labels
    description: labels of orders
  - name: report
    config: {group: money}
"""
READERS["models/props.yml"] = PROPS
CENTS = "{% macro cents(column) %}{{ column }} * 100{% endmacro %}\n"
READERS["macros/cents.sql"] = CENTS
READERS["models/in_cents.sql"] = "select id, {{ cents('amount') }} as amount_cents from {{ ref('orders') }}"
READERS["models/groups.yml"] = "groups:\n  - name: money\n    owner: {name: finance}\n"


def changed_paths(base: dict[str, str], head: dict[str, str]) -> list[str]:
    return sorted(p for p in set(base) | set(head) if base.get(p) != head.get(p))


def run(base: dict[str, str], head: dict[str, str], cache: build.ParseCache | None = None) -> Analysis:
    return analyze(
        DictSource(base), DictSource(head), base_rev="base", head_rev="head",
        config=parse_config(base.get(".tessera.yml")), changed_paths=changed_paths(base, head),
        today=TODAY, cache=cache,
    )


def whole_cone(base: dict[str, str], head: dict[str, str]) -> tuple[list[object], list[object], list[object]]:
    """The changes, impacts and acks with every model downstream of the change inferred on each
    side (each side built on its own, as before the sides were built together)."""
    config: Config = parse_config(base.get(".tessera.yml"))
    scope = set(changed_paths(base, head))
    cache = build.ParseCache()
    base_snapshot = build.build_snapshot(DictSource(base), config, scope=scope, cache=cache)
    head_snapshot = build.build_snapshot(DictSource(head), config, scope=scope, cache=cache)
    changes = diff.diff_snapshots(base_snapshot, head_snapshot, config, changed_paths=scope, cache=cache)
    found = impact.walk_impact(changes, base_snapshot, head_snapshot, config)
    return list(changes), list(found.impacts), list(found.required)


def test_a_reader_of_no_changed_column_and_what_reads_it_are_not_inferred() -> None:
    head = {**READERS, "models/orders.sql": "select 1 as id, 'x' as label, 3 as amount"}
    scope = set(changed_paths(READERS, head))
    config = parse_config(CONFIG_TEXT)
    pair = build.build_pair(DictSource(READERS), DictSource(head), config, scope=scope)
    # the changed model and the reader of a changed model are inferred at once: the diff asks who reads it
    assert [c.name for c in pair.head.assets["labels"].columns] == ["id", "label"]
    assert pair.head.assets["by_label"].columns == ()  # not yet: nothing asked who reads `labels`
    changes = diff.diff_snapshots(pair.base, pair.head, config, changed_paths=scope)
    found = impact.walk_impact(changes, pair.base, pair.head, config, grow=pair.grow)
    assert [c.name for c in pair.head.assets["tripled"].columns] == ["tripled"]  # reached through `amount`
    assert [c.name for c in pair.head.assets["report"].columns] == ["doubled", "n"]
    assert pair.head.assets["by_label"].columns == ()  # reads `label` only: read for its schema, not shown
    assert {i.consumer for i in found.impacts} == {"amounts", "doubled", "tripled", "report", "board"}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: {**f, "models/orders.sql": "select 1 as id, 'x' as label, 3 as amount"},
                     id="logic of one column"),
        pytest.param(lambda f: {**f, "models/orders.sql": "select 1 as id, 'x' as label"}, id="column removed"),
        pytest.param(lambda f: {**f, "models/orders.sql": "select 1 as id, 'x' as label, 'two' as amount"},
                     id="column retyped"),
        pytest.param(lambda f: {**f, "models/orders.sql": "select 1 as id, 'x' as label, 2 as amount where false"},
                     id="rows filtered"),
        pytest.param(lambda f: {**f, "models/doubled.sql": "select doubled, 1 as one from {{ ref('amounts') }}"},
                     id="a reader in the middle"),
        pytest.param(lambda f: {**f, "models/owners.yml": f["models/owners.yml"].replace("core", "platform")},
                     id="an owner in a file describing every model"),
        pytest.param(lambda f: {**f, "models/props.yml": PROPS.replace("warn", "error")},
                     id="a test's severity"),
        pytest.param(lambda f: {**f, "models/props.yml": PROPS.replace("the amount", "the amount, in cents")},
                     id="a column's description"),
        pytest.param(lambda f: {**f, "models/props.yml": PROPS.replace("data_type: int", "data_type: text")},
                     id="a declared type"),
        pytest.param(lambda f: {**f, "models/props.yml": PROPS.replace("      - name: label\n", "")},
                     id="a column no longer documented"),
        pytest.param(lambda f: {k: v for k, v in f.items() if k != "models/amounts.sql"}, id="a model deleted"),
        pytest.param(lambda f: {**f, "macros/cents.sql": CENTS.replace("100", "1000")}, id="a macro a model calls"),
        pytest.param(lambda f: {**f, "macros/cents.sql": CENTS + "{% macro unused() %}1{% endmacro %}\n"},
                     id="a macro nothing calls"),
        pytest.param(lambda f: {**f, "dbt_project.yml": "name: p\nvars: {unused: 1}\n"}, id="a var nothing reads"),
        pytest.param(lambda f: {**f, "models/groups.yml": f["models/groups.yml"].replace("finance", "treasury")},
                     id="a group's owner"),
        pytest.param(lambda f: {**f, "dbt_project.yml": "name: p\nmodels:\n  p:\n    +materialized: table\n"},
                     id="every model's materialization"),
    ],
)
def test_findings_impacts_and_acks_are_those_of_inferring_the_whole_cone(change) -> None:  # type: ignore[no-untyped-def]
    head = change(READERS)
    result = run(READERS, head)
    assert (list(result.changes), list(result.impacts), list(result.required_acks)) == whole_cone(READERS, head)


@pytest.mark.parametrize("change", [drop_coupon_code, drop_discounts, retype_customer_id])
def test_the_shop_changes_come_out_as_when_the_whole_cone_is_inferred(change) -> None:  # type: ignore[no-untyped-def]
    base = shop_files()
    head = change(base)
    result = run(base, head)
    assert result.changes
    assert (list(result.changes), list(result.impacts), list(result.required_acks)) == whole_cone(base, head)


def test_a_warm_run_gives_the_same_analysis_without_inferring_again(inference_jobs: list[build.InferenceJob]) -> None:
    head = {**READERS, "models/orders.sql": "select 1 as id, 'x' as label"}
    cache = build.ParseCache()
    cold = run(READERS, head, cache)
    assert inference_jobs  # the cold run inferred
    inference_jobs.clear()
    warm = run(READERS, head, cache)
    assert warm == cold
    assert inference_jobs == []


def test_a_mended_description_or_test_infers_no_reader(inference_jobs: list[build.InferenceJob]) -> None:
    """What only people read (a description, a test's severity) changes nothing a reader is
    inferred from, and nothing said about readers: only the model itself is inferred."""
    head = {**READERS, "models/props.yml": PROPS.replace("warn", "error").replace("the amount", "cents")}
    result = run(READERS, head)
    assert [(c.rule, c.severity) for c in result.changes] == [("METADATA_CHANGED", "info")]
    assert result.required_acks == ()
    assert sorted({job[3] for job in inference_jobs}) == ["orders"]


def test_models_of_a_changed_properties_file_whose_entry_is_the_same_are_not_inferred(
    inference_jobs: list[build.InferenceJob],
) -> None:
    head = {**READERS, "models/props.yml": PROPS.replace("labels of orders", "each order's label")}
    run(READERS, head)
    # `labels` reads `orders` (inferred for its schema); `orders`' own entry did not change
    assert sorted({job[3] for job in inference_jobs}) == ["labels", "orders"]
    assert {job[3]: job[5] for job in inference_jobs} == {"labels": True, "orders": False}


def test_a_ref_that_names_nothing_on_either_side_does_not_put_its_reader_in_the_cone(
    inference_jobs: list[build.InferenceJob],
) -> None:
    base = {**READERS, "models/extended.sql": "select * from {{ ref('package_model') }}"}
    head = {**base, "models/doubled.sql": "select doubled, 1 as one from {{ ref('amounts') }}"}
    run(base, head)
    assert "extended" not in {job[3] for job in inference_jobs}
    gone = {k: v for k, v in base.items() if k != "models/labels.sql"}
    inference_jobs.clear()
    run(base, {**gone, "models/extended.sql": "select * from {{ ref('labels') }}"})
    assert "extended" in {job[3] for job in inference_jobs}  # its parent is gone in this change


def test_a_macro_edit_infers_the_models_that_call_it_not_every_model(
    inference_jobs: list[build.InferenceJob],
) -> None:
    run(READERS, {**READERS, "macros/cents.sql": CENTS.replace("100", "1000")})
    # `in_cents` renders differently; `orders` is read for its schema; nothing else changed
    assert {job[3]: job[5] for job in inference_jobs} == {"in_cents": True, "orders": False}


VERSIONED = {
    "dbt_project.yml": "name: p\n",
    ".tessera.yml": CONFIG_TEXT,
    "models/props.yml": "models:\n  - name: m\n    versions:\n      - v: 1\n      - v: 2\n",
    "models/m_v1.sql": "select 1 as id, 'a' as gone",
    "models/m_v2.sql": "select 1 as id, 'a' as gone",
    "models/reader.sql": "select id, gone from {{ ref('m') }}",
    "models/owners.yml": "models:\n  - name: reader\n    meta: {owner: growth}\n",
}
SEEDED = {
    "dbt_project.yml": "name: p\nseeds:\n  p:\n    codes:\n      +column_types: {code: integer}\n",
    ".tessera.yml": CONFIG_TEXT,
    "seeds/codes.csv": "code,label\n1,a\n2,b\n",
    "models/reader.sql": "select code, label from {{ ref('codes') }}",
    "models/reader2.sql": "select code from {{ ref('reader') }}",
    "models/owners.yml": "models:\n  - name: reader\n    meta: {owner: growth}\n  - name: reader2\n    meta: {owner: growth}\n",
}
UNCOMPILABLE = "{% macro twice(x) %}{% for loop in [1] %}{{ x }}{% endfor %}{% endmacro %}\n"
BROKEN_MACRO = {
    "dbt_project.yml": "name: p\n",
    ".tessera.yml": CONFIG_TEXT,
    "macros/twice.sql": UNCOMPILABLE,
    "models/m.sql": "select {{ twice(1) }} as a\n",
    "models/r.sql": "select a from {{ ref('m') }}\n",
}


@pytest.mark.parametrize(
    ("base", "head"),
    [
        pytest.param(VERSIONED, {**VERSIONED, "models/m_v3.sql": "select 1 as id",
                                 "models/props.yml": VERSIONED["models/props.yml"] + "      - v: 3\n"},
                     id="a new latest version unpinned refs move to"),
        pytest.param(VERSIONED, {**{k: v for k, v in VERSIONED.items() if k != "models/m_v2.sql"},
                                 "models/props.yml": "models:\n  - name: m\n    versions:\n      - v: 1\n"},
                     id="the latest version removed"),
        pytest.param(SEEDED, {**SEEDED, "dbt_project.yml": SEEDED["dbt_project.yml"].replace("integer", "text")},
                     id="a seed's column_types in dbt_project.yml"),
        pytest.param(BROKEN_MACRO, {**BROKEN_MACRO, "macros/twice.sql": UNCOMPILABLE + "{% macro one() %}1{% endmacro %}\n"},
                     id="a macro file edited whose macro never compiled"),
    ],
)
def test_versions_seeds_and_broken_macros_come_out_as_when_the_whole_cone_is_inferred(
    base: dict[str, str], head: dict[str, str]
) -> None:
    result = run(base, head)
    assert result.changes
    assert (list(result.changes), list(result.impacts), list(result.required_acks)) == whole_cone(base, head)


def test_a_seeds_column_types_changed_in_its_properties_reach_its_readers() -> None:
    """The seed's type reaches what reads it (inferring each side on its own never saw that: the
    properties file is not the seed's file)."""
    base = {**SEEDED, "dbt_project.yml": "name: p\n",
            "seeds/props.yml": "seeds:\n  - name: codes\n    config: {column_types: {code: integer}}\n"}
    head = {**base, "seeds/props.yml": base["seeds/props.yml"].replace("integer", "text")}
    result = run(base, head)
    assert {(c.rule, c.asset, c.column, c.severity) for c in result.changes} == {
        ("COLUMN_TYPE_CHANGED", "codes", "code", "breaking"),
        ("COLUMN_TYPE_CHANGED", "reader", "code", "breaking"),
        ("COLUMN_TYPE_CHANGED", "reader2", "code", "breaking"),
    }


def test_a_model_whose_properties_moved_down_the_file_says_where_they_are_now() -> None:
    base = {
        "dbt_project.yml": "name: p\n", ".tessera.yml": CONFIG_TEXT,
        "models/props.yml": "models:\n  - name: a\n  - name: m\n    description: hi\n",
        "models/a.sql": "select 1 as id", "models/m.sql": "select 2 as id",
    }
    head = {**base, "models/props.yml": base["models/props.yml"].replace("- name: a\n", "- name: a\n    meta: {x: 1}\n")}
    scope = set(changed_paths(base, head))
    config = parse_config(CONFIG_TEXT)
    pair = build.build_pair(DictSource(base), DictSource(head), config, scope=scope)
    alone = build.build_snapshot(DictSource(head), config, scope=scope)
    assert pair.head.assets["m"].meta[PROPERTIES_AT] == alone.assets["m"].meta[PROPERTIES_AT] == ["models/props.yml", 4]
