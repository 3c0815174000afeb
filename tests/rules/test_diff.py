"""The diff on hand-built snapshots: each rule fires where it should, with the right severity.

The data-driven cases in ``tests/rules/cases`` exercise the diff through real SQL and dbt files;
these tests pin down the diff's own decisions (renames, modes, overrides, UNKNOWN types) without
depending on how snapshots are built.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rules.catalog import RULES_BY_ID
from rules.diff import diff_snapshots
from rules.model import SEVERITIES, UNKNOWN, Asset, Column, Config, ParseProblem, Snapshot


def table(fqn: str, *cols: Column, **kw: object) -> Asset:
    return Asset(fqn, "table", path=kw.pop("path", "migrations/001.sql"), line=1,  # type: ignore[arg-type]
                 columns=tuple(replace(c, position=i) for i, c in enumerate(cols)), dialect="postgres", **kw)  # type: ignore[arg-type]


def model(fqn: str, sql: str, *cols: Column, **kw: object) -> Asset:
    return Asset(fqn, "model", path=f"models/{fqn}.sql", line=1, sql=sql, name=fqn,  # type: ignore[arg-type]
                 columns=tuple(replace(c, position=i) for i, c in enumerate(cols)), dialect="duckdb", **kw)  # type: ignore[arg-type]


def snap(*assets: Asset, problems: list[ParseProblem] | None = None) -> Snapshot:
    return Snapshot(assets={a.fqn: a for a in assets}, problems=problems or [])


def found(changes: list, rule: str | None = None) -> list[tuple[str, str, str, str | None]]:
    return [(c.rule, c.severity, c.asset, c.column) for c in changes if rule is None or c.rule == rule]


ID = Column("id", "INT", nullable=False, constraints=("primary_key",))
PLAN = Column("plan_code", "TEXT")


def test_identical_snapshots_produce_no_changes() -> None:
    s = snap(table("public.accounts", ID, PLAN))
    assert diff_snapshots(s, snap(table("public.accounts", ID, PLAN)), Config()) == []


def test_removed_column_is_breaking_in_backward_and_safe_in_forward() -> None:
    base = snap(table("public.accounts", ID, PLAN))
    head = snap(table("public.accounts", ID))
    assert found(diff_snapshots(base, head, Config())) == [("COLUMN_REMOVED", "breaking", "public.accounts", "plan_code")]
    assert found(diff_snapshots(base, head, Config(compatibility="forward"))) == [
        ("COLUMN_REMOVED", "safe", "public.accounts", "plan_code")
    ]


def test_per_asset_compatibility_wins_over_the_repository_mode() -> None:
    base = snap(model("fct", "select 1", ID, PLAN))
    head = snap(model("fct", "select 2", ID, compatibility="none"))
    changes = diff_snapshots(base, head, Config(compatibility="full"))
    assert ("COLUMN_REMOVED", "review", "fct", "plan_code") in found(changes)


def test_dropped_table_is_asset_removed_with_the_base_path() -> None:
    base = snap(table("public.accounts", ID), table("public.orders", ID))
    head = snap(table("public.orders", ID))
    changes = diff_snapshots(base, head, Config())
    assert found(changes) == [("ASSET_REMOVED", "breaking", "public.accounts", None)]
    assert changes[0].path == "migrations/001.sql"


def test_disabled_model_counts_as_removed() -> None:
    base = snap(model("fct", "select 1", ID))
    head = snap(model("fct", "select 1", ID, enabled=False))
    assert found(diff_snapshots(base, head, Config())) == [("ASSET_REMOVED", "breaking", "fct", None)]


def test_table_renamed_by_sql_is_one_asset_renamed_finding() -> None:
    base = snap(table("public.accounts", ID, PLAN))
    head = snap(table("public.customers", ID, PLAN, meta={"renamed_from": "accounts"}))
    changes = diff_snapshots(base, head, Config())
    assert found(changes) == [("ASSET_RENAMED", "breaking", "public.accounts", None)]
    assert (changes[0].before, changes[0].after) == ("public.accounts", "public.customers")


def test_model_moved_to_a_new_name_with_the_same_sql_is_a_rename() -> None:
    base = snap(model("fct_rev", "select id from x", ID))
    head = snap(model("fct_revenue", "SELECT id\nFROM x", ID))
    assert found(diff_snapshots(base, head, Config())) == [("ASSET_RENAMED", "breaking", "fct_rev", None)]


def test_model_becoming_versioned_is_not_a_removal() -> None:
    base = snap(model("fct", "select 1", ID))
    head = snap(replace(model("fct", "select 1", ID), fqn="fct.v1", version="1", latest_version="1"))
    rules = [c.rule for c in diff_snapshots(base, head, Config())]
    assert "ASSET_REMOVED" not in rules
    assert "VERSION_DEPRECATED" in rules


def test_column_rename_recorded_by_sql_is_column_renamed_not_removed() -> None:
    base = snap(table("public.accounts", ID, PLAN))
    head = snap(table("public.accounts", ID, Column("plan", "TEXT", meta={"renamed_from": "plan_code"})))
    changes = diff_snapshots(base, head, Config())
    assert found(changes) == [("COLUMN_RENAMED", "breaking", "public.accounts", "plan_code")]
    assert (changes[0].before, changes[0].after) == ("plan_code", "plan")


def test_column_with_same_expression_and_type_under_a_new_name_is_a_rename() -> None:
    base = snap(model("fct", "select a.plan_code from a", ID, Column("plan_code", "TEXT", expression="a.plan_code")))
    head = snap(model("fct", "select a.plan_code as plan from a", ID, Column("plan", "TEXT", expression="a.plan_code")))
    assert found(diff_snapshots(base, head, Config()), "COLUMN_RENAMED") == [
        ("COLUMN_RENAMED", "breaking", "fct", "plan_code")
    ]
    assert found(diff_snapshots(base, head, Config()), "COLUMN_REMOVED") == []


def test_new_column_with_a_different_expression_is_removal_plus_addition() -> None:
    base = snap(model("fct", "select 1", Column("plan_code", "TEXT", expression="a.plan_code")))
    head = snap(model("fct", "select 2", Column("plan", "TEXT", expression="upper(a.plan_code)")))
    rules = sorted(c.rule for c in diff_snapshots(base, head, Config()))
    assert "COLUMN_REMOVED" in rules and "COLUMN_ADDED" in rules and "COLUMN_RENAMED" not in rules


def test_type_aliases_are_no_change_but_real_type_changes_are_classified() -> None:
    base = snap(table("public.t", Column("a", "INT"), Column("b", "VARCHAR(10)"), Column("c", "BIGINT"), Column("d", "INT")))
    head = snap(table("public.t", Column("a", "INTEGER"), Column("b", "VARCHAR(20)"), Column("c", "INT"), Column("d", "TEXT")))
    assert found(diff_snapshots(base, head, Config())) == [
        ("COLUMN_TYPE_CHANGED", "breaking", "public.t", "d"),
        ("COLUMN_TYPE_NARROWED", "breaking", "public.t", "c"),
        ("COLUMN_TYPE_WIDENED", "safe", "public.t", "b"),
    ]


def test_a_type_that_became_unknown_is_review_never_safe_or_breaking() -> None:
    base = snap(model("fct", "select 1", Column("a", "INT")))
    head = snap(model("fct", "select 2", Column("a", UNKNOWN)))
    changes = [c for c in diff_snapshots(base, head, Config()) if c.column == "a"]
    assert found(changes) == [("COLUMN_TYPE_CHANGED", "review", "fct", "a")]


def test_nullability_changes_follow_the_mode() -> None:
    base = snap(table("public.t", Column("a", "INT", nullable=False), Column("b", "INT")))
    head = snap(table("public.t", Column("a", "INT"), Column("b", "INT", nullable=False)))
    assert found(diff_snapshots(base, head, Config())) == [
        ("COLUMN_NULLABILITY_LOOSENED", "breaking", "public.t", "a"),
        ("COLUMN_NULLABILITY_TIGHTENED", "safe", "public.t", "b"),
    ]
    assert found(diff_snapshots(base, head, Config(compatibility="forward"))) == [
        ("COLUMN_NULLABILITY_TIGHTENED", "breaking", "public.t", "b"),
        ("COLUMN_NULLABILITY_LOOSENED", "safe", "public.t", "a"),
    ]


def test_required_column_added_to_a_table_breaks_writers_in_forward_mode() -> None:
    base = snap(table("public.t", ID))
    head = snap(table("public.t", ID, Column("tenant", "INT", nullable=False), Column("note", "TEXT", nullable=False, default="''")))
    assert found(diff_snapshots(base, head, Config(compatibility="forward"))) == [
        ("COLUMN_ADDED_REQUIRED", "breaking", "public.t", "tenant"),
        ("COLUMN_ADDED", "safe", "public.t", "note"),
    ]


def test_reordered_columns_are_review_but_an_appended_column_is_not_a_reorder() -> None:
    a, b = Column("a", "INT"), Column("b", "INT")
    changes = diff_snapshots(snap(table("public.t", a, b)), snap(table("public.t", b, a)), Config())
    assert found(changes) == [("COLUMN_REORDERED", "review", "public.t", None)]
    appended = diff_snapshots(snap(table("public.t", a, b)), snap(table("public.t", a, b, Column("c", "INT"))), Config())
    assert [c.rule for c in appended] == ["COLUMN_ADDED"]


def test_primary_key_moved_from_column_to_table_constraint_is_not_a_removal() -> None:
    base = snap(table("public.t", ID))
    head = snap(table("public.t", Column("id", "INT", nullable=False), constraints=("PRIMARY_KEY(id)",)))
    assert diff_snapshots(base, head, Config()) == []


def test_dropped_keys_are_breaking_and_widened_accepted_values_a_review_constraint_removed() -> None:
    base = snap(table("public.t", ID, Column("status", "TEXT", constraints=("accepted_values:a,b",)),
                      constraints=("unique(status)",)))
    head = snap(table("public.t", Column("id", "INT", nullable=False), Column("status", "TEXT", constraints=("accepted_values:a,b,c",))))
    changes = diff_snapshots(base, head, Config())
    assert sorted(found(changes)) == [
        ("CONSTRAINT_REMOVED", "breaking", "public.t", "id"),
        ("CONSTRAINT_REMOVED", "breaking", "public.t", "status"),
        ("CONSTRAINT_REMOVED", "review", "public.t", "status"),
    ]


def test_narrowed_accepted_values_are_not_a_removed_constraint() -> None:
    base = snap(table("public.t", Column("status", "TEXT", constraints=("accepted_values:a,b",))))
    head = snap(table("public.t", Column("status", "TEXT", constraints=("accepted_values:a",))))
    assert diff_snapshots(base, head, Config()) == []


def test_contract_access_materialization_and_unique_key_changes() -> None:
    base = snap(model("fct", "select 1", ID, contract_enforced=True, access="public", materialized="table",
                      unique_key=("id",)))
    head = snap(model("fct", "select 1", ID, access="private", materialized="ephemeral", unique_key=("id", "day")))
    assert sorted(found(diff_snapshots(base, head, Config()))) == [
        ("ACCESS_NARROWED", "breaking", "fct", None),
        ("CONTRACT_UNENFORCED", "review", "fct", None),
        ("GRAIN_CHANGED", "breaking", "fct", None),
        ("MATERIALIZATION_CHANGED", "breaking", "fct", None),
    ]


def test_materialization_change_between_relations_is_only_review() -> None:
    base = snap(model("fct", "select 1", ID, materialized="view"))
    head = snap(model("fct", "select 1", ID, materialized="table"))
    assert found(diff_snapshots(base, head, Config())) == [("MATERIALIZATION_CHANGED", "review", "fct", None)]


def test_description_and_formatting_edits_are_info_only() -> None:
    base = snap(model("fct", "select id from x", ID, description="old"))
    head = snap(model("fct", "SELECT  id -- the key\nFROM x", replace(ID, description="the key"), description="new"))
    changes = diff_snapshots(base, head, Config())
    assert changes and {c.severity for c in changes} == {"info"}
    assert {c.rule for c in changes} == {"METADATA_CHANGED"}


def test_rule_overrides_and_ignore_globs_apply() -> None:
    base = snap(table("public.t", ID, PLAN), table("sandbox.s", ID, path="sandbox/x.sql"))
    head = snap(table("public.t", ID))
    config = Config(rules={"COLUMN_REMOVED": "review"}, ignore=("sandbox/**",))
    assert found(diff_snapshots(base, head, config)) == [("COLUMN_REMOVED", "review", "public.t", "plan_code")]
    assert diff_snapshots(base, head, Config(rules={"COLUMN_REMOVED": "ignore"}, ignore=("sandbox/**",))) == []


def test_unparsed_problem_in_a_changed_file_is_review_or_breaking_when_blocking() -> None:
    head = snap(table("public.t", ID), problems=[ParseProblem("migrations/002.sql", "cannot parse", 4)])
    base = snap(table("public.t", ID))
    changes = diff_snapshots(base, head, Config(), changed_paths={"migrations/002.sql"})
    assert found(changes) == [("UNPARSED", "review", "migrations/002.sql", None)]
    assert (changes[0].path, changes[0].line) == ("migrations/002.sql", 4)
    blocking = diff_snapshots(base, head, Config(on_unparsed="block"), changed_paths={"migrations/002.sql"})
    assert found(blocking) == [("UNPARSED", "breaking", "migrations/002.sql", None)]
    assert diff_snapshots(base, head, Config(), changed_paths={"models/other.sql"}) == []


def test_a_problem_the_base_already_had_is_not_news() -> None:
    problem = ParseProblem("migrations/002.sql", "cannot parse", 4)
    s = snap(table("public.t", ID), problems=[problem])
    assert diff_snapshots(s, snap(table("public.t", ID), problems=[problem]), Config()) == []


def test_column_findings_carry_the_head_line_of_the_column() -> None:
    base = snap(table("public.t", Column("a", "INT", line=2)))
    head = snap(table("public.t", Column("a", "TEXT", line=7)))
    (change,) = diff_snapshots(base, head, Config())
    assert (change.path, change.line, change.before, change.after) == ("migrations/001.sql", 7, "INT", "TEXT")


def test_uncertain_column_loss_in_an_unparsable_file_is_reported_once_as_unparsed() -> None:
    base = snap(model("stg", "select 1 as id", Column("id", "INT")))
    head = snap(replace(model("stg", "select {{", ), columns_known=False),
                problems=[ParseProblem("models/stg.sql", "Jinja syntax error", 1)])
    assert found(diff_snapshots(base, head, Config(on_unparsed="warn"), changed_paths={"models/stg.sql"})) == [
        ("UNPARSED", "review", "stg", None)
    ]


def test_column_loss_that_cannot_be_confirmed_is_review_not_breaking() -> None:
    base = snap(model("stg", "select 1", Column("id", "INT")))
    head = snap(replace(model("stg", "select * from ext"), columns_known=False))
    assert found(diff_snapshots(base, head, Config()), "COLUMN_REMOVED") == [("COLUMN_REMOVED", "review", "stg", "id")]


def test_unparsable_statement_in_a_shared_sql_file_names_the_file_not_a_neighbour() -> None:
    head = snap(table("public.t", ID, path="migrations/002.sql"),
                problems=[ParseProblem("migrations/002.sql", "cannot parse", 5)])
    changes = diff_snapshots(snap(table("public.t", ID, path="migrations/002.sql")), head, Config(),
                             changed_paths={"migrations/002.sql"})
    assert found(changes) == [("UNPARSED", "review", "migrations/002.sql", None)]


def test_new_latest_version_is_reported_on_the_version_that_stops_being_latest() -> None:
    def versions(latest: str) -> Snapshot:
        return snap(*(replace(model("fct", "select 1", ID), fqn=f"fct.v{v}", version=v, latest_version=latest)
                      for v in ("1", "2")))
    changes = diff_snapshots(versions("1"), versions("2"), Config())
    assert found(changes) == [("VERSION_DEPRECATED", "review", "fct.v1", None)]
    assert "ref('fct')" in changes[0].message


def test_moving_a_model_into_an_ignored_folder_is_not_a_removal() -> None:
    base = snap(model("scratch", "select 1", ID))
    head = snap(replace(model("scratch", "select 1", ID), path="models/sandbox/scratch.sql"))
    assert diff_snapshots(base, head, Config(ignore=("models/sandbox/**",))) == []


def test_a_column_no_longer_declared_on_a_source_is_review() -> None:
    source = Asset("raw.orders", "source", path="models/sources.yml", columns=(ID, replace(PLAN, position=1)))
    changes = diff_snapshots(snap(source), snap(replace(source, columns=(ID,))), Config())
    assert found(changes) == [("COLUMN_REMOVED", "review", "raw.orders", "plan_code")]


def test_a_unique_key_written_as_list_text_equals_the_same_list() -> None:
    base = snap(model("snap", "select 1", ID, unique_key=("['id', 'order_date']",)))
    head = snap(model("snap", "select 1", ID, unique_key=("id", "order_date")))
    assert diff_snapshots(base, head, Config()) == []
    changed = snap(model("snap", "select 1", ID, unique_key=("id",)))
    assert found(diff_snapshots(base, changed, Config())) == [("GRAIN_CHANGED", "breaking", "snap", None)]


SHARED_DBT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "dbt"


@pytest.mark.shared
def test_diff_between_two_real_manifests_of_one_project_names_every_finding_by_a_catalog_rule() -> None:
    old = SHARED_DBT / "dbt-bouncer-test-project-dbt1.7" / "manifest.json"
    new = SHARED_DBT / "dbt-bouncer-test-project" / "manifest.json"
    if not (old.exists() and new.exists()):
        pytest.skip("../shared is absent")
    from rules.dbt_manifest import load_manifest

    base = load_manifest(json.loads(old.read_text()))
    head = load_manifest(json.loads(new.read_text()))
    changes = diff_snapshots(base, head, Config())
    assert changes
    assert all(c.rule in RULES_BY_ID and c.severity in SEVERITIES and c.message for c in changes)
    # the snapshot's unique key is the same columns, written differently by dbt 1.7
    assert not [c for c in changes if c.rule == "GRAIN_CHANGED" and c.asset.startswith("snapshot_orders")]
    assert diff_snapshots(head, head, Config()) == []


def test_declaring_a_type_that_differs_from_the_inferred_one_is_review_not_breaking() -> None:
    base = snap(model("fct", "select 1", Column("revenue", "DECIMAL(38, 4)")))
    head = snap(model("fct", "select 1", Column("revenue", "DECIMAL(12, 2)", declared_type=True)))
    (change,) = diff_snapshots(base, head, Config())
    assert (change.rule, change.severity) == ("COLUMN_TYPE_NARROWED", "review")
    assert "declared as DECIMAL(12, 2)" in change.message


def test_a_warm_cache_gives_the_same_findings_without_comparing_queries_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rules.build import ParseCache
    from rules.checks import semantics

    base = snap(model("fct", "select id from x", Column("id", "INT", expression="id")))
    head = snap(model("fct", "select id from x where id > 0", Column("id", "INT", expression="id")))
    cache = ParseCache()
    cold = diff_snapshots(base, head, Config(), cache=cache)
    assert [c.rule for c in cold] == ["FILTER_CHANGED"]

    def no_more_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the warm run parsed a query again")

    semantics._compare_queries.cache_clear()
    semantics.normalized_sql.cache_clear()
    monkeypatch.setattr(semantics, "compare_queries", no_more_parsing)
    monkeypatch.setattr(semantics, "normalize_sql", no_more_parsing)
    assert diff_snapshots(base, head, Config(), cache=cache) == cold


def test_a_dropped_table_and_a_new_one_sharing_only_an_id_column_are_not_a_rename() -> None:
    base = snap(table("public.accounts", ID))
    head = snap(table("public.invoices", ID))
    assert found(diff_snapshots(base, head, Config())) == [("ASSET_REMOVED", "breaking", "public.accounts", None)]


def test_a_removed_column_that_a_downstream_model_still_reads_says_the_model_will_fail_once() -> None:
    from rules.model import Edge

    parent_before = model("stg", "select a, b from x", Column("a", "INT"), Column("b", "BOOLEAN"))
    parent_after = model("stg", "select a from x", Column("a", "INT"))
    child_before = model("fct", "select b from stg group by b", Column("b", "BOOLEAN"))
    child_after = model("fct", "select b from stg group by b", Column("b", UNKNOWN))
    base = snap(parent_before, child_before)
    head = snap(parent_after, child_after)
    head.edges += [Edge("stg", "b", "fct", "b"), Edge("stg", "b", "fct", None, usage="group")]
    (change,) = diff_snapshots(base, head, Config())
    assert (change.rule, change.severity, change.asset, change.column) == ("COLUMN_REMOVED", "breaking", "stg", "b")
    assert change.message == (
        "Column `b` was removed from `stg`. Model `fct` still reads it (select, group by) "
        "and will fail to build unless it changes too."
    )


def test_a_removal_that_fails_a_downstream_build_is_at_least_review_even_where_the_mode_calls_removal_safe() -> None:
    from rules.model import Edge

    base = snap(model("stg", "select a, b from x", Column("a", "INT"), Column("b", "INT")),
                model("fct", "select a from stg where b > 0", Column("a", "INT")))
    head = snap(model("stg", "select a from x", Column("a", "INT")),
                model("fct", "select a from stg where b > 0", Column("a", "INT")))
    head.edges += [Edge("stg", "a", "fct", "a"), Edge("stg", "b", "fct", None, usage="filter")]
    assert found(diff_snapshots(base, head, Config(compatibility="forward"))) == [
        ("COLUMN_REMOVED", "review", "stg", "b")
    ]
    # nobody reads it any more: forward mode really has nothing to say
    head.edges[:] = [Edge("stg", "a", "fct", "a")]
    assert found(diff_snapshots(base, head, Config(compatibility="forward"))) == [
        ("COLUMN_REMOVED", "safe", "stg", "b")
    ]


def test_a_type_lost_only_because_an_input_was_removed_is_reported_once_at_the_root() -> None:
    from rules.model import Edge

    stg = model("stg", "select a, b from x", Column("a", "INT"), Column("b", "BOOLEAN"))
    mid = model("mid", "select b from stg", Column("b", "BOOLEAN"))
    top = model("top", "select b from mid", Column("b", "BOOLEAN"))
    base = snap(stg, mid, top)
    head = snap(
        model("stg", "select a from x", Column("a", "INT")),
        replace(mid, columns=(Column("b", UNKNOWN),)),
        replace(top, columns=(Column("b", UNKNOWN),)),
    )
    head.edges += [Edge("stg", "b", "mid", "b"), Edge("mid", "b", "top", "b")]
    changes = diff_snapshots(base, head, Config())
    assert found(changes) == [("COLUMN_REMOVED", "breaking", "stg", "b")]
    assert "Model `mid` still reads it (select)" in changes[0].message


def test_a_downstream_column_reading_something_that_never_existed_still_says_it_will_fail() -> None:
    from rules.model import Edge

    base = snap(model("stg", "select a from x", Column("a", "INT")),
                model("fct", "select a as b from stg", Column("b", "INT")))
    head = snap(model("stg", "select a from x", Column("a", "INT")),
                model("fct", "select b from stg", Column("b", UNKNOWN)))
    head.edges.append(Edge("stg", "b", "fct", "b"))
    (change,) = [c for c in diff_snapshots(base, head, Config()) if c.rule == "COLUMN_TYPE_CHANGED"]
    assert (change.rule, change.severity, change.asset) == ("COLUMN_TYPE_CHANGED", "review", "fct")
    assert "reads `stg.b`, which no longer exists: `fct` will fail to build" in change.message


def test_adding_a_not_null_test_to_a_column_of_unknown_type_stays_safe() -> None:
    base = snap(model("fct", "select 1", Column("a", UNKNOWN)))
    head = snap(model("fct", "select 1", Column("a", UNKNOWN, nullable=False, constraints=("not_null",))))
    assert found(diff_snapshots(base, head, Config())) == [("COLUMN_NULLABILITY_TIGHTENED", "safe", "fct", "a")]


def test_an_unchanged_model_left_unrendered_on_one_side_loses_no_columns() -> None:
    base = snap(model("stg", "select id from x", ID, checksum="c1"))
    head = snap(Asset("stg", "model", path="models/stg.sql", columns_known=False, checksum="c1"))
    assert diff_snapshots(base, head, Config()) == []
