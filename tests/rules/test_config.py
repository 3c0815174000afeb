"""`.tessera.yml` parsing: the documented example works, and nothing a person can type crashes it."""

from __future__ import annotations

import pytest

from rules.config import parse_config
from rules.model import Config, Registration, TeamSpec

DESIGN_EXAMPLE = """\
compatibility: backward            # default mode; per asset: dbt meta.tessera.compatibility
teams:
  finance: {github: acme/finance-data, emails: [finance-data@acme.com], names: [Finance Data]}
  growth:  {github: acme/growth}
dbt:
  projects: [analytics]
  dialect: snowflake
  manifest: analytics/target/manifest.json
sql:
  paths: ["migrations/**/*.sql", "views/**/*.sql"]
  dialect: postgres
rules: {FILTER_CHANGED: breaking, COLUMN_TYPE_WIDENED: ignore}
ignore: ["analytics/models/sandbox/**"]
consumers:
  - {team: growth, asset: fct_revenue, columns: [revenue, plan_code], note: revenue dashboard}
on_unparsed: warn
"""


def test_the_design_example_parses_into_every_setting_without_problems() -> None:
    config = parse_config(DESIGN_EXAMPLE)
    assert config.problems == ()
    assert config.compatibility == "backward"
    assert config.teams["finance"] == TeamSpec(
        slug="finance", github="acme/finance-data", emails=("finance-data@acme.com",), names=("Finance Data",)
    )
    assert config.teams["growth"].github == "acme/growth"
    assert config.dbt.projects == ("analytics",)
    assert config.dbt.dialect == "snowflake"
    assert config.dbt.manifest == "analytics/target/manifest.json"
    assert config.sql.paths == ("migrations/**/*.sql", "views/**/*.sql")
    assert config.sql.dialect == "postgres"
    assert config.rules == {"FILTER_CHANGED": "breaking", "COLUMN_TYPE_WIDENED": "ignore"}
    assert config.ignore == ("analytics/models/sandbox/**",)
    assert config.consumers == (
        Registration(
            team="growth", asset="fct_revenue", columns=("revenue", "plan_code"), note="revenue dashboard"
        ),
    )
    assert config.on_unparsed == "warn"


@pytest.mark.parametrize("text", [None, "", "   \n", "# only a comment\n"])
def test_an_absent_or_empty_file_gives_the_defaults(text: str | None) -> None:
    assert parse_config(text) == Config()


def test_malformed_yaml_gives_defaults_and_a_problem_with_the_line() -> None:
    config = parse_config("compatibility: full\nteams: {growth: [\n")
    assert config.compatibility == "backward"
    assert len(config.problems) == 1
    assert "not valid YAML" in config.problems[0]
    assert "line" in config.problems[0]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_a_file_that_is_not_a_mapping_gives_defaults_and_a_problem(text: str) -> None:
    config = parse_config(text)
    assert config.compatibility == "backward"
    assert config.problems and "must be a mapping" in config.problems[0]


def test_unknown_keys_are_reported_and_the_rest_still_applies() -> None:
    config = parse_config("compatibilty: full\ncompatibility: forward\n")
    assert config.compatibility == "forward"
    assert any("'compatibilty'" in p for p in config.problems)


def test_a_bad_mode_falls_back_to_backward_with_a_message() -> None:
    config = parse_config("compatibility: sideways\non_unparsed: explode\n")
    assert config.compatibility == "backward"
    assert config.on_unparsed == "regressions"
    assert any("sideways" in p for p in config.problems)
    assert any("explode" in p for p in config.problems)


def test_modes_are_case_insensitive() -> None:
    config = parse_config("compatibility: FULL\non_unparsed: Block\n")
    assert (config.compatibility, config.on_unparsed, config.problems) == ("full", "block", ())


def test_a_bad_rule_severity_is_dropped_and_reported() -> None:
    config = parse_config("rules: {COLUMN_REMOVED: fatal, FILTER_CHANGED: breaking}\n")
    assert config.rules == {"FILTER_CHANGED": "breaking"}
    assert any("COLUMN_REMOVED" in p and "fatal" in p for p in config.problems)


def test_team_entries_tolerate_shorthand_and_report_wrong_shapes() -> None:
    config = parse_config(
        "teams:\n  growth: acme/growth\n  finance: [x]\n  ops: {github: not-a-team, emails: Ops@Acme.com}\n"
    )
    assert config.teams["growth"].github == "acme/growth"
    assert config.teams["finance"] == TeamSpec(slug="finance")
    assert config.teams["ops"].github is None
    assert config.teams["ops"].emails == ("ops@acme.com",)
    assert any("teams.finance" in p for p in config.problems)
    assert any("not-a-team" in p for p in config.problems)


def test_consumers_without_team_or_asset_are_skipped_with_a_message() -> None:
    config = parse_config(
        "consumers:\n  - {team: growth}\n  - plain string\n  - {team: Growth, asset: FCT_Revenue}\n"
    )
    assert config.consumers == (Registration(team="growth", asset="fct_revenue"),)
    assert sum("consumers[" in p for p in config.problems) == 2


def test_a_single_string_is_accepted_where_a_list_is_expected() -> None:
    config = parse_config("ignore: 'sandbox/**'\nsql: {paths: 'db/*.sql'}\n")
    assert config.ignore == ("sandbox/**",)
    assert config.sql.paths == ("db/*.sql",)
    assert config.problems == ()


def test_an_unknown_dialect_is_reported_and_left_unset() -> None:
    config = parse_config("dbt: {dialect: oracle9i}\nsql: {dialect: PostgreSQL}\n")
    assert config.dbt.dialect is None
    assert config.sql.dialect == "postgres"
    assert any("oracle9i" in p for p in config.problems)


def test_sections_of_the_wrong_shape_do_not_raise() -> None:
    config = parse_config("dbt: [a]\nsql: 3\nrules: [x]\nteams: yes\nconsumers: {a: b}\nignore: {a: 1}\n")
    assert config.dbt.projects == ()
    assert config.sql.paths == ()
    assert config.rules == {}
    assert config.teams == {}
    assert config.consumers == ()
    assert config.ignore == ()
    assert len(config.problems) == 6


def test_a_teams_slack_channel_is_read_and_a_webhook_url_is_refused_as_a_secret_in_the_repository():
    config = parse_config('teams:\n  growth: {github: acme/growth, slack: "#data-growth"}\n'
                          '  finance: {slack: "https://hooks.slack.com/services/T0/B0/x"}\n')
    assert config.teams["growth"].slack == "#data-growth"
    assert config.teams["finance"].slack is None
    assert any("teams.finance.slack" in p for p in config.problems)


def test_internal_keeps_the_dbt_layers_by_default_and_each_key_given_replaces_its_default() -> None:
    assert (Config().internal.folders, Config().internal.prefixes) == (
        ("staging", "intermediate", "base"), ("stg_", "int_", "base_"))
    config = parse_config("internal: {folders: [Cleaned/, prep]}\n")
    assert config.internal.folders == ("cleaned", "prep")
    assert config.internal.prefixes == ("stg_", "int_", "base_")
    assert parse_config("internal: {folders: [], prefixes: []}\n").internal.folders == ()
    assert config.problems == ()


def test_internal_of_the_wrong_shape_keeps_the_defaults_and_says_why() -> None:
    config = parse_config("internal: [staging]\n")
    assert config.internal == Config().internal
    assert config.problems == ("internal: expected a mapping, got a list; using defaults",)
    odd = parse_config("internal: {folders: [3], layers: [x]}\n")
    assert odd.internal.folders == ()
    assert "internal: unknown key 'layers' (known: folders, prefixes)" in odd.problems
    assert "internal.folders: 3 is not a string; skipped" in odd.problems


def test_an_internal_folder_given_as_a_path_is_a_problem_and_an_empty_key_keeps_the_default() -> None:
    config = parse_config("internal: {folders: [models/staging, prep]}\n")
    assert config.internal.folders == ("prep",)
    assert config.problems == (
        "internal.folders: 'models/staging' is a path; name one folder (e.g. 'staging'): any folder"
        " of that name below the models folder counts",
    )
    assert parse_config("internal: {folders:, prefixes:}\n").internal == Config().internal
