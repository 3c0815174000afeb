"""The PR comment and the JSON output read right and stay within GitHub's limits."""

from __future__ import annotations

import json
import re

from rules.model import Analysis, AnalysisError, Change, Dialect, Impact, Migration, Project, RequiredAck
from rules.report import MARKER, AckState, mermaid, needs_comment, to_json, to_markdown
from tests.rendered import GITHUB, render


def analysis(**overrides: object) -> Analysis:
    values: dict[str, object] = dict(
        base="a" * 40,
        head="b" * 40,
        status="needs_ack",
        changes=(
            Change(
                "COLUMN_REMOVED",
                "breaking",
                "fct_revenue",
                "plan_code",
                "models/marts/fct_revenue.sql",
                3,
                "column plan_code was removed",
                "varchar",
                None,
            ),
            Change(
                "COLUMN_LOGIC_CHANGED",
                "review",
                "fct_revenue",
                "revenue",
                "models/marts/fct_revenue.sql",
                2,
                "revenue is computed differently",
                "sum(a)",
                "sum(b)",
            ),
            Change(
                "COLUMN_ADDED",
                "safe",
                "dim_customer",
                "tier",
                "models/dim_customer.sql",
                4,
                "column tier was added",
            ),
        ),
        impacts=(
            Impact(
                "fct_revenue",
                "revenue_dashboard",
                "exposure",
                "growth",
                ("plan_code",),
                ("COLUMN_REMOVED",),
                ("fct_revenue", "growth_kpis", "revenue_dashboard"),
            ),
        ),
        required_acks=(
            RequiredAck(
                "growth",
                "acme/growth",
                ("COLUMN_REMOVED: fct_revenue.plan_code, read by exposure revenue_dashboard",),
                "f1",
            ),
        ),
        migrations=(
            Migration(
                "COLUMN_REMOVED",
                "fct_revenue",
                "plan_code",
                "Keep plan_code until 2026-12-25, then remove it.",
                "select revenue, plan_code from x",
            ),
        ),
    )
    values.update(overrides)
    return Analysis(**values)  # type: ignore[arg-type]


def test_json_output_is_the_design_object() -> None:
    data = json.loads(to_json(analysis()))
    assert list(data) == [
        "base",
        "head",
        "status",
        "changes",
        "impacts",
        "required_acks",
        "migrations",
        "errors",
        "projects",
    ]
    assert data["changes"][0]["rule"] == "COLUMN_REMOVED" and data["changes"][0]["line"] == 3
    assert data["impacts"][0] == {
        "asset": "fct_revenue",
        "consumer": "revenue_dashboard",
        "consumer_type": "exposure",
        "team": "growth",
        "columns": ["plan_code"],
        "rules": ["COLUMN_REMOVED"],
    }
    assert data["required_acks"][0]["github_team"] == "acme/growth"


def test_comment_starts_with_the_marker_and_mentions_the_team_that_must_ack() -> None:
    text = to_markdown(analysis())
    assert text.startswith(MARKER + "\n")
    headline = text.splitlines()[1]
    assert "@acme/growth" in headline and "1 breaking change" in headline
    assert "/tessera ack" in text and "/tessera migrating" in text and "/tessera block" in text


def test_breaking_changes_come_before_review_and_safe_ones_are_folded() -> None:
    text = to_markdown(analysis())
    assert text.index("COLUMN_REMOVED") < text.index("COLUMN_LOGIC_CHANGED")
    details = text.index("<details>")
    assert text.index("column tier was added") > details
    assert text.index("COLUMN_LOGIC_CHANGED") < details


def test_migrations_show_their_sql_in_a_code_block() -> None:
    text = to_markdown(analysis())
    assert "```sql\nselect revenue, plan_code from x\n```" in text
    assert "Keep plan_code until 2026-12-25" in text


def test_mermaid_diagram_links_the_changed_asset_to_its_consumers_through_the_path() -> None:
    diagram, shortened = mermaid(analysis())
    assert diagram.startswith("```mermaid\ngraph LR")
    assert not shortened
    assert 'n0["fct_revenue"]' in diagram and 'n2(["revenue_dashboard"])' in diagram
    assert "n0 --> n1" in diagram and "n1 --> n2" in diagram


def test_a_large_graph_is_shortened_with_a_link() -> None:
    impacts = tuple(
        Impact(
            "fct_revenue",
            f"dash_{i}",
            "exposure",
            "growth",
            ("plan_code",),
            ("COLUMN_REMOVED",),
            ("fct_revenue", f"dash_{i}"),
        )
        for i in range(60)
    )
    text = to_markdown(analysis(impacts=impacts), details_url="https://tessera.example/checks/7")
    assert "Shortened to 40 nodes" in text and "https://tessera.example/checks/7" in text
    assert "dash_10" in text.split("```mermaid")[1] and "dash_50" not in text.split("```mermaid")[1]


def test_ack_states_are_shown_per_team_and_change_the_headline() -> None:
    acked = to_markdown(analysis(), acks={"growth": AckState("ack", user="gina")})
    assert "✅ acknowledged by @gina" in acked
    assert "has acknowledged" in acked.splitlines()[1]
    blocked = to_markdown(analysis(), acks={"growth": AckState("block", user="gina", reason="Q4 close")})
    assert "blocked by @acme/growth" in blocked.splitlines()[1] and "Q4 close" in blocked
    migrating = to_markdown(analysis(), acks={"growth": AckState("migrating", deadline="2026-12-01")})
    assert "migrating until 2026-12-01" in migrating
    stale = to_markdown(analysis(), acks={"growth": AckState("ack", user="gina", stale=True)})
    assert "was for different changes" in stale and "needs an acknowledgement" in stale.splitlines()[1]


def test_the_how_to_answer_instructions_go_once_every_team_has_acked() -> None:
    waiting = to_markdown(analysis())
    assert "answers with a comment starting with one of" in waiting and "`/tessera ack`" in waiting
    acked = to_markdown(analysis(), acks={"growth": AckState("ack", user="gina")})
    assert "answers with a comment starting with one of" not in acked
    assert "Every team above has acknowledged: nothing more is needed here." in acked
    for pending in (AckState("migrating", deadline="2026-12-01"), AckState("ack", user="gina", stale=True)):
        assert "answers with a comment starting with one of" in to_markdown(analysis(), acks={"growth": pending})


def test_comment_over_the_limit_is_shortened_and_links_to_details() -> None:
    changes = tuple(
        Change(
            "COLUMN_REMOVED",
            "breaking",
            f"model_{i}",
            f"col_{i}",
            f"models/m{i}.sql",
            1,
            "column removed " + "x" * 80,
        )
        for i in range(2000)
    )
    text = to_markdown(analysis(changes=changes), details_url="https://t.example/checks/1", limit=65536)
    assert len(text) <= 65536
    assert text.startswith(MARKER)
    assert "https://t.example/checks/1" in text and "shortened" in text


def test_shortening_drops_the_diagram_before_the_changes() -> None:
    full = to_markdown(analysis())
    shorter = to_markdown(analysis(), limit=len(full) - 50)
    assert "```mermaid" in full and "```mermaid" not in shorter
    assert "plan_code" in shorter and len(shorter) <= len(full) - 50


def test_a_clear_pr_reads_as_clear_and_needs_no_comment() -> None:
    clear = analysis(
        status="clear",
        changes=(Change("COLUMN_ADDED", "safe", "dim_customer", "tier"),),
        impacts=(),
        required_acks=(),
        migrations=(),
    )
    assert not needs_comment(clear)
    assert "no breaking changes" in to_markdown(clear).splitlines()[1]
    assert needs_comment(analysis())
    assert needs_comment(clear.__class__(**{**clear.__dict__, "errors": (AnalysisError("a.sql", "bad"),)}))


def test_breaking_changes_nobody_reads_say_so_without_asking_anyone() -> None:
    text = to_markdown(analysis(status="clear", impacts=(), required_acks=(), migrations=()))
    assert "no other team reads what changed" in text.splitlines()[1]
    assert "/tessera ack" not in text


def test_consumers_are_grouped_by_team_naming_where_each_team_is_first_reached() -> None:
    chain = ("fct_revenue", "ops_base", "ops_mid", "ops_top", "ops_dash")
    impacts = tuple(
        Impact(
            "fct_revenue",
            name,
            "exposure" if name == "ops_dash" else "model",
            "ops",
            ("plan_code",),
            ("COLUMN_REMOVED",),
            chain[: i + 2],
        )
        for i, name in enumerate(chain[1:])
    ) + tuple(
        Impact(
            "fct_revenue",
            f"ops_side_{n}",
            "model",
            "ops",
            ("plan_code",),
            ("COLUMN_REMOVED",),
            ("fct_revenue", "ops_base", f"ops_side_{n}"),
        )
        for n in range(8)
    )
    text = to_markdown(analysis(impacts=impacts, required_acks=(RequiredAck("ops", "acme/ops"),)))
    table = text.split("### Who reads what changed")[1].split("###")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `fct_revenue`")]
    assert len(rows) == 1
    assert "@acme/ops" in rows[0] and "model `ops_base`" in rows[0]
    assert "exposure `ops_dash` (via `ops_base` → `ops_mid` → `ops_top`)" in rows[0]
    assert "and 10 more downstream models" in rows[0]


def test_many_migrations_fold_after_the_first_three() -> None:
    migrations = tuple(Migration("COLUMN_REMOVED", "fct_revenue", f"c{n}", f"Keep c{n}.") for n in range(5))
    text = to_markdown(analysis(migrations=migrations))
    section = text.split("### Suggested migrations")[1]
    assert (
        section.index("Keep c2.")
        < section.index("<details><summary>2 more suggestions</summary>")
        < section.index("Keep c3.")
    )


def test_a_change_line_does_not_repeat_what_its_message_says() -> None:
    text = to_markdown(analysis())
    assert "column plan_code was removed · line 3" in text
    assert "(`sum(a)` → `sum(b)`)" in text


def test_a_dbt_properties_snippet_is_fenced_as_yaml_and_sql_as_sql() -> None:
    migrations = (
        Migration(
            "COLUMN_REMOVED",
            "fct_revenue",
            None,
            "Ship v2.",
            "models:\n  - name: fct_revenue\n    latest_version: 2",
        ),
        Migration("COLUMN_REMOVED", "fct_revenue", "plan_code", "Keep it.", "select plan_code from x"),
    )
    text = to_markdown(analysis(migrations=migrations))
    assert "```yaml\nmodels:\n  - name: fct_revenue" in text
    assert "```sql\nselect plan_code from x\n```" in text


def test_problems_are_listed_with_their_file_when_they_have_one() -> None:
    errors = (
        AnalysisError(".tessera.yml", "unknown key colour"),
        AnalysisError("", "migration suggestions failed"),
    )
    text = to_markdown(analysis(errors=errors))
    assert "- `.tessera.yml`: unknown key colour" in text
    assert (
        "- migration suggestions failed" in text
        and "``" not in text.split("### Needs a look")[1].split("###")[0]
    )


def test_a_problem_an_unparsed_finding_already_shows_is_not_listed_again_under_needs_a_look() -> None:
    unparsed = Change(
        "UNPARSED", "review", "ddl/1.sql", None, "ddl/1.sql", 4,
        "Tessera could not analyse ddl/1.sql (line 4): cannot parse SQL: Unexpected token.",
    )
    errors = (
        AnalysisError("ddl/1.sql", "line 4: cannot parse SQL: Unexpected token."),
        AnalysisError(".tessera.yml", "unknown key colour"),
    )
    text = to_markdown(analysis(changes=(unparsed,), errors=errors, status="clear", impacts=(), required_acks=()))
    assert text.count("cannot parse SQL: Unexpected token.") == 1
    assert "- `.tessera.yml`: unknown key colour" in text


def test_the_footer_names_each_projects_dialect_and_why_in_code_so_nothing_in_a_path_renders() -> None:
    projects = (
        Project("@acme/team", Dialect("snowflake", "@acme/team/profiles.yml (target dev: snowflake)")),
        Project(".", Dialect("postgres", "default")),
    )
    footer = to_markdown(analysis(projects=projects)).splitlines()[-1]
    assert footer.startswith("<sub>") and footer.endswith("</sub>")
    assert (
        "read `@acme/team/` as Snowflake (`@acme/team/profiles.yml (target dev: snowflake)`)"
        " and the root project as PostgreSQL (`default`)"
    ) in footer


# --- names, paths and reasons from a pull request stay inert ---------------------------------------

HOSTILE = "x` @acme/everyone [win](https://evil.example) <img src=x> #12 www.evil.example `y"
"""A name that tries to leave its code span, mention a whole organisation, link and add HTML."""


def hostile_analysis(name: str = HOSTILE) -> Analysis:
    fqn = f"analytics.{name}"
    return analysis(
        changes=(
            Change(
                "COLUMN_REMOVED", "breaking", fqn, name, f"models/{name}.sql", 3,
                f"Column `{name}` was removed from `{fqn}`.", f"varchar {name}", None,
            ),
            Change(
                "COLUMN_TYPE_CHANGED", "breaking", fqn, name, f"models/{name}.sql", 4,
                f"Type of `{name}` changed: {name} | {name}", f"int {name}", f"text {name}",
            ),
            Change("COLUMN_ADDED", "safe", fqn, name, f"models/{name}.sql", 5, f"Column `{name}` was added."),
        ),
        impacts=(
            Impact(fqn, name, "exposure", name, (name,), ("COLUMN_REMOVED",), (fqn, f"mid {name}", name)),
            Impact(fqn, "dash", "exposure", "growth", (name,), ("COLUMN_REMOVED",), (fqn, "dash")),
        ),
        required_acks=(
            RequiredAck("growth", "acme/growth", (f"COLUMN_REMOVED: {fqn}.{name}, read by `{name}`",), "f1"),
            RequiredAck(name, f"not a team {name}", (f"COLUMN_REMOVED: `{name}`",), "f2"),
        ),
        migrations=(
            Migration("COLUMN_REMOVED", fqn, name, f"Keep `{name}` for a release: {name}", f"select 1 as \"{name}\"\n```\n@acme/everyone\n~~~~"),
        ),
        errors=(AnalysisError(f"models/{name}.sql", f"cannot parse {name}"),),
    )


def test_a_backtick_in_a_column_name_leaves_no_live_mention_link_or_html_in_the_comment() -> None:
    acks = {"growth": AckState("block", user="gina", reason=HOSTILE)}
    seen = render(to_markdown(hostile_analysis(), acks=acks, details_url="https://tessera.example/checks/1"))
    assert sorted(set(seen.mentions)) == ["@acme/growth", "@gina"]
    assert seen.autolinks == []
    assert seen.links == ["https://tessera.example/checks/1"] * seen.links.count("https://tessera.example/checks/1")
    assert seen.unexpected_html == []


def test_names_are_shown_whole_inside_their_code_spans() -> None:
    seen = render(to_markdown(hostile_analysis()))
    name = HOSTILE
    assert name in seen.code  # the column
    assert f"analytics.{name}" in seen.code  # the asset
    assert f"models/{name}.sql" in seen.code  # the path
    assert f"int {name}" in seen.code and f"text {name}" in seen.code  # before and after


def test_a_pipe_in_a_name_does_not_split_a_table_row() -> None:
    name = "a|b\\|c` | d"
    in_table = False
    cells: list[str] = []
    for token in GITHUB.parse(to_markdown(hostile_analysis(name))):
        in_table = token.type != "table_close" and (in_table or token.type == "table_open")
        if in_table and token.type == "inline":
            cells += [child.content for child in token.children or () if child.type == "code_inline"]
    # each name is one whole code span in its cell: the asset, the team without a GitHub team,
    # the consumer, the column
    for whole in (f"analytics.{name}", f"not a team {name}", name, f"mid {name}"):
        assert whole in cells


def test_migration_sql_cannot_close_its_code_block() -> None:
    seen = render(to_markdown(hostile_analysis()))
    sql_blocks = [content for info, content in seen.fences if info == "sql"]
    assert sql_blocks == ['select 1 as "' + HOSTILE + '"\n```\n@acme/everyone\n~~~~\n']


MERMAID_LINE = re.compile(
    r'^  (?:n\d+(?:\["[^"]*"\]|\(\["[^"]*"\]\)|\[/"[^"]*"/\])|n\d+ --> n\d+|classDef \w+ [\w:#,]+|class [n\d,]+ \w+)$'
)


def test_mermaid_labels_cannot_end_the_label_start_a_statement_or_close_the_block() -> None:
    name = 'evil"]; click n0 href "javascript:alert(1)"\n```\n@acme/everyone'
    diagram, _ = mermaid(hostile_analysis(name))
    lines = diagram.splitlines()
    assert lines[0] == "```mermaid" and lines[-1] == "```" and lines[1] == "graph LR"
    assert all(MERMAID_LINE.match(line) for line in lines[2:-1]), lines
    assert "click" not in "".join(line for line in lines if not line.startswith('  n') or '"' not in line)


def test_a_person_with_a_hostile_name_is_named_inert_in_the_headline_and_the_table() -> None:
    person = RequiredAck(f"user:{HOSTILE}", None, ("COLUMN_REMOVED: read by `dash`",), "f3", kind="user", user=HOSTILE)
    seen = render(to_markdown(analysis(required_acks=(person,))))
    assert seen.mentions == [] and seen.unexpected_html == [] and seen.autolinks == []
    assert seen.code.count(HOSTILE) >= 2  # the headline and the table row
