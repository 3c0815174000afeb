"""The whole analysis on the issue-3 acceptance project: who must acknowledge what."""

from __future__ import annotations

import datetime

from rules.analyze import analyze
from rules.build import InferenceJob
from rules.config import parse_config
from rules.model import Analysis
from rules.sources import DictSource
from tests.shop import (
    CONTRACT_SCENARIOS,
    drop_coupon_code,
    drop_discounts,
    drop_signup_date,
    retype_customer_id,
    shop_files,
    without_line,
)

TODAY = datetime.date(2026, 11, 25)


def run(base: dict[str, str], head: dict[str, str], **kwargs: object) -> Analysis:
    changed = sorted(p for p in set(base) | set(head) if base.get(p) != head.get(p))
    return analyze(
        DictSource(base),
        DictSource(head),
        base_rev="base",
        head_rev="head",
        config=parse_config(base.get(".tessera.yml")),
        changed_paths=changed,
        today=TODAY,
        **kwargs,  # type: ignore[arg-type]
    )


def breaking(analysis: Analysis) -> set[tuple[str, str, str | None]]:
    return {(c.rule, c.asset, c.column) for c in analysis.changes if c.severity == "breaking"}


def test_removing_a_column_read_by_one_exposure_requires_that_exposures_team_only() -> None:
    files = shop_files()
    result = run(files, drop_discounts(files))
    assert ("COLUMN_REMOVED", "fct_revenue", "discounts") in breaking(result)
    assert result.status == "needs_ack"
    assert [(a.team, a.github_team) for a in result.required_acks] == [("growth", "shop/growth")]
    consumers = {(i.consumer, i.consumer_type, i.team) for i in result.impacts}
    assert ("channel_mix", "exposure", "growth") in consumers
    assert not any(i.consumer == "revenue_dashboard" for i in result.impacts)


def test_removing_a_column_nothing_in_the_repository_reads_from_a_public_model_holds_for_its_unknown_readers() -> None:
    files = shop_files()
    result = run(files, drop_coupon_code(files))
    assert ("COLUMN_REMOVED", "fct_orders", "coupon_code") in breaking(result)
    # fct_orders is `access: public`: readers outside the repository may read coupon_code
    assert [(a.team, a.fallback, a.held_for) for a in result.required_acks] == [
        ("maintainers", True, ("unknown_readers",))
    ]
    assert result.status == "needs_ack"


def test_removing_a_column_nobody_reads_requires_no_one_when_unknown_readers_only_warn() -> None:
    files = shop_files()
    files[".tessera.yml"] += "on_unknown_readers: warn\n"
    result = run(files, drop_coupon_code(files))
    assert ("COLUMN_REMOVED", "fct_orders", "coupon_code") in breaking(result)
    assert result.required_acks == ()
    assert result.status == "clear"
    assert [(i.consumer, i.consumer_type, i.team) for i in result.impacts] == [("fct_orders", "unknown", None)]


def test_a_team_reading_through_two_layers_of_its_own_models_must_ack() -> None:
    files = shop_files()
    result = run(files, drop_signup_date(files))
    assert ("COLUMN_REMOVED", "dim_customers.v2", "signup_date") in breaking(result)
    # dim_customers is `access: public`: Growth is asked, and its readers outside the repository
    # are held for the maintainers
    assert [a.team for a in result.required_acks] == ["growth", "maintainers"]
    dashboard = [i for i in result.impacts if i.consumer == "growth_dashboard"]
    assert dashboard and dashboard[0].path[-3:] == (
        "growth_customer_ltv",
        "growth_cohorts",
        "growth_dashboard",
    )


def test_description_only_edit_needs_nothing_and_has_no_breaking_or_review_finding() -> None:
    files = shop_files()
    path = "models/marts/marts.yml"
    head = {
        **files,
        path: files[path].replace("Monthly revenue by sales channel.", "Revenue per month and channel."),
    }
    result = run(files, head)
    assert result.status == "clear"
    assert not [c for c in result.changes if c.severity in ("breaking", "review")]


def test_a_description_edited_in_yaml_is_located_in_the_yaml_not_the_models_sql() -> None:
    files = shop_files()
    path = "models/marts/marts.yml"
    head = {**files, path: files[path].replace("Monthly revenue by sales channel.", "Revenue per month and channel.")}
    [change] = [c for c in run(files, head).changes if c.rule == "METADATA_CHANGED"]
    assert change.path == path
    assert change.line is not None and "fct_revenue" in files[path].splitlines()[change.line - 1]


def test_reformatting_a_model_needs_nothing() -> None:
    files = shop_files()
    path = "models/marts/fct_revenue.sql"
    head = {
        **files,
        path: "-- revenue by month\n"
        + files[path].upper().replace("{{ REF('FCT_ORDERS') }}", "{{ ref('fct_orders') }}"),
    }
    result = run(files, head)
    assert result.status == "clear"
    assert not [c for c in result.changes if c.severity in ("breaking", "review")]


def test_removing_an_exposures_model_reaches_every_team_downstream() -> None:
    files = shop_files()
    head = {p: t for p, t in files.items() if p != "models/marts/fct_revenue.sql"}
    head["models/marts/exposures.yml"] = files["models/marts/exposures.yml"]
    result = run(files, head)
    assert ("ASSET_REMOVED", "fct_revenue", None) in breaking(result)
    assert [a.team for a in result.required_acks] == ["finance", "growth"]


def test_migrations_are_suggested_for_breaking_changes() -> None:
    files = shop_files()
    result = run(files, drop_discounts(files))
    assert any(m.asset == "fct_revenue" and m.column == "discounts" for m in result.migrations)


def test_configuration_problems_and_broken_changed_files_are_reported_as_errors() -> None:
    files = shop_files()
    base = {**files, ".tessera.yml": files[".tessera.yml"] + "colour: blue\n"}
    path = "models/marts/fct_revenue.sql"
    head = {**base, path: files[path] + "\n{% if %}\n"}
    result = run(base, head)
    assert any(e.path == ".tessera.yml" and "colour" in e.message for e in result.errors)
    assert any(e.path == path for e in result.errors)


def test_codeowners_from_the_base_revision_decide_an_unowned_consumer() -> None:
    files = shop_files()
    path = "models/marts/exposures.yml"
    files[path] = without_line(files[path], r"owner: growth")
    files[path] = files[path].replace("      name: Growth Analytics\n", "      name: Someone\n")
    files["CODEOWNERS"] = "models/marts/exposures.yml @shop/growth\n"
    result = run(files, drop_discounts(files))
    assert [a.team for a in result.required_acks] == ["growth"]


def test_retyping_a_contracted_join_key_requires_the_team_that_joins_on_it() -> None:
    files = shop_files()
    result = run(files, retype_customer_id(files))
    assert any(c.rule == "COLUMN_TYPE_CHANGED" and c.column == "customer_id" for c in result.changes)
    # the public fct_orders' readers outside the repository are held for the maintainers besides
    assert [a.team for a in result.required_acks] == ["growth", "maintainers"]
    ack = result.required_acks[0]
    assert any("growth_customer_ltv" in reason for reason in ack.reasons)


def test_every_contract_scenario_reports_a_breaking_change_on_the_contracted_model() -> None:
    files = shop_files()
    for name, edit in CONTRACT_SCENARIOS.items():
        result = run(files, edit(files))
        hits = [c for c in result.changes if c.asset == "fct_orders" and c.severity in ("breaking", "review")]
        assert hits, name


def test_a_consumer_owned_by_a_name_that_is_no_team_asks_that_person() -> None:
    files = shop_files()
    path = "models/marts/exposures.yml"
    files[path] = without_line(files[path], r"owner: growth")
    files[path] = files[path].replace("      name: Growth Analytics\n", "      name: Someone Else\n")
    result = run(files, drop_discounts(files))
    (ack,) = result.required_acks
    assert (ack.kind, ack.user, ack.login, ack.fallback) == ("user", "Someone Else", None, False)
    assert "exposure channel_mix" in ack.reasons[0]
    assert result.to_dict()["required_acks"][0]["user"] == "Someone Else"


SQL_CONFIG = """
teams:
  platform: {github: acme/platform}
  finance: {github: acme/finance-data}
  growth: {github: acme/growth}
sql:
  paths: ["migrations/**/*.sql", "views/**/*.sql"]
  dialect: postgres
consumers:
  - {team: growth, asset: analytics.orders, columns: [channel], note: channel report}
"""

SQL_FILES = {
    ".tessera.yml": SQL_CONFIG,
    "CODEOWNERS": "* @acme/platform\n/views/ @acme/finance-data\n",
    "migrations/001_orders.sql": (
        "create table analytics.orders (\n"
        "  id bigint primary key,\n"
        "  amount numeric(12, 2) not null,\n"
        "  channel varchar(20),\n"
        "  note text\n"
        ");\n"
    ),
    "views/revenue.sql": (
        "create view reporting.revenue as\nselect channel, sum(amount) as revenue\nfrom analytics.orders\ngroup by channel;\n"
    ),
}


def test_sql_migrations_reach_views_through_codeowners_and_registrations_through_config() -> None:
    head = {
        **SQL_FILES,
        "migrations/002_drop_amount.sql": "alter table analytics.orders drop column amount;\n",
    }
    result = run(SQL_FILES, head)
    assert ("COLUMN_REMOVED", "analytics.orders", "amount") in breaking(result)
    assert [(a.team, a.github_team) for a in result.required_acks] == [("finance", "acme/finance-data")]
    assert {(i.consumer, i.consumer_type) for i in result.impacts} == {("reporting.revenue", "view")}

    head = {
        **SQL_FILES,
        "migrations/002_drop_channel.sql": "alter table analytics.orders drop column channel;\n",
    }
    result = run(SQL_FILES, head)
    assert [a.team for a in result.required_acks] == ["finance", "growth"]

    head = {**SQL_FILES, "migrations/002_drop_note.sql": "alter table analytics.orders drop column note;\n"}
    result = run(SQL_FILES, head)
    assert ("COLUMN_REMOVED", "analytics.orders", "note") in breaking(result)
    assert result.required_acks == () and result.status == "clear"


class _Untouchable:
    """A source that fails the test if the analysis reads it."""

    def paths(self) -> list[str]:
        raise AssertionError("a docs-only change must not read the repository")

    def read(self, path: str) -> str | None:
        raise AssertionError(f"read {path}")

    def blob_id(self, path: str) -> str | None:
        raise AssertionError(f"blob_id {path}")


def test_a_change_to_nothing_a_schema_is_made_of_is_clear_without_reading_anything() -> None:
    config = parse_config("teams: {growth: {github: acme/growth}}\ncolour: blue\n")
    result = analyze(
        _Untouchable(),
        _Untouchable(),
        base_rev="b",
        head_rev="h",
        config=config,
        changed_paths=["README.md", "docs/setup.md", ".github/workflows/ci.sh"],
        today=TODAY,
    )
    assert result.status == "clear" and result.changes == ()
    assert [e.path for e in result.errors] == [".tessera.yml"]


def test_a_producer_who_fixes_their_own_downstream_model_in_the_same_pr_needs_no_ack() -> None:
    files = shop_files()
    files[".tessera.yml"] += "on_unknown_readers: warn\n"  # only the readers in the repository here
    head = dict(files)
    sql, yml, revenue = (
        "models/marts/fct_orders.sql",
        "models/marts/marts.yml",
        "models/marts/fct_revenue.sql",
    )
    head[sql] = without_line(files[sql], r"as discount,")
    head[yml] = without_line(files[yml], r"name: discount,")
    head[revenue] = files[revenue].replace(
        "sum(discount) as discounts", "cast(0 as decimal(38, 2)) as discounts"
    )
    result = run(files, head)
    assert ("COLUMN_REMOVED", "fct_orders", "discount") in breaking(result)
    assert result.required_acks == ()
    assert any(i.consumer == "channel_mix" and "COLUMN_LOGIC_CHANGED" in i.rules for i in result.impacts)

    unfixed = {**head, revenue: files[revenue]}
    assert [a.team for a in run(files, unfixed).required_acks] == ["growth"]


def test_without_a_cache_the_two_sides_still_infer_each_unchanged_model_once(
    inference_jobs: list[InferenceJob],
) -> None:
    base = shop_files()
    head = drop_coupon_code(base)
    run(base, head)
    inferred = [
        (job[3], job[0], repr(sorted((k, sorted(v.items())) for k, v in job[2].items()))) for job in inference_jobs
    ]
    assert inferred
    assert len(inferred) == len(set(inferred))  # the same SQL over the same parent schemas never twice


MACRO_PROJECT = {
    "dbt_project.yml": "name: p\n",
    ".tessera.yml": "dbt: {dialect: postgres}\n",
    "macros/twice.sql": "{% macro twice(x) %}{{ x }} * 2{% endmacro %}\n",
    "models/m.sql": "select {{ twice(1) }} as a\n",
}


def test_a_macro_edit_that_breaks_the_models_calling_it_is_unparsed_at_the_macro() -> None:
    compile_error = "{% macro twice(x) %}{% for loop in [1] %}{{ x }}{% endfor %}{% endmacro %}\n"
    parse_error = "{% macro twice(x) %}{% for y in %}{{ x }}{% endmacro %}\n"
    for text, message in [
        (compile_error, "macro twice cannot be compiled: Can't assign to special loop variable in for-loop target"),
        (parse_error, "macro file could not be loaded: Expected an expression, got 'end of statement block'"),
    ]:
        result = run(MACRO_PROJECT, {**MACRO_PROJECT, "macros/twice.sql": text})
        [unparsed] = [c for c in result.changes if c.rule == "UNPARSED"]
        assert (unparsed.path, unparsed.line) == ("macros/twice.sql", 1)
        assert unparsed.message.endswith(message)
