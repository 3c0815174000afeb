"""The check's verdict and output, built without a network: acks, fingerprints, annotations."""

from __future__ import annotations

import datetime as dt

from app.workflow.acks import OVERRIDE_TEAM, AckRecord, overall_fingerprint, verdict
from app.workflow.checkrun import annotations, build_output, completion_requests
from app.workflow.serialize import analysis_from_json, analysis_to_json
from rules.model import (
    Analysis,
    AnalysisError,
    Change,
    Detected,
    Dialect,
    Impact,
    Migration,
    Project,
    RequiredAck,
)
from tests.rendered import render

GROWTH = RequiredAck("growth", "acme/growth", ("revenue dashboard reads plan_code",), "fp-growth-1")
FINANCE = RequiredAck("finance", None, ("fct_ledger reads plan_code",), "fp-finance-1")


def test_no_required_team_means_success() -> None:
    assert verdict([], {}).conclusion == "success"


def test_missing_ack_means_action_required_naming_the_team() -> None:
    result = verdict([GROWTH], {})
    assert result.conclusion == "action_required"
    assert "@acme/growth" in result.title


def test_an_ack_for_the_same_changes_satisfies_the_team() -> None:
    records = {"growth": AckRecord("growth", "ack", "alice", fingerprint="fp-growth-1")}
    assert verdict([GROWTH], records).conclusion == "success"


def test_an_ack_for_different_changes_is_invalidated() -> None:
    records = {"growth": AckRecord("growth", "ack", "alice", fingerprint="fp-growth-0")}
    result = verdict([GROWTH], records)
    assert result.conclusion == "action_required"
    assert result.statuses[0].state == "invalidated"


def test_migrating_records_a_deadline_but_still_waits_for_an_ack() -> None:
    deadline = dt.date(2026, 12, 31)
    records = {"growth": AckRecord("growth", "migrating", "alice", fingerprint="fp-growth-1", deadline=deadline)}
    result = verdict([GROWTH], records)
    assert result.conclusion == "action_required"
    assert result.statuses[0].state == "migrating" and result.statuses[0].deadline == deadline


def test_a_block_fails_the_check_even_after_other_teams_acked() -> None:
    records = {
        "growth": AckRecord("growth", "block", "bob", reason="dashboard breaks"),
        "finance": AckRecord("finance", "ack", "carol", fingerprint="fp-finance-1"),
    }
    result = verdict([GROWTH, FINANCE], records)
    assert result.conclusion == "failure" and "@acme/growth" in result.title


def test_an_override_passes_until_the_breaking_changes_change() -> None:
    override = AckRecord(OVERRIDE_TEAM, "override", "admin", fingerprint=overall_fingerprint([GROWTH]), reason="x")
    assert verdict([GROWTH], {OVERRIDE_TEAM: override}).conclusion == "success"
    moved = RequiredAck("growth", "acme/growth", (), "fp-growth-2")
    assert verdict([moved], {OVERRIDE_TEAM: override}).conclusion == "action_required"


def _change(n: int, severity: str = "breaking", path: str = "models/a.sql") -> Change:
    return Change("COLUMN_REMOVED", severity, "a", f"c{n}", path, n + 1, f"column c{n} removed")


def test_annotations_cover_changed_files_only_and_skip_safe_findings() -> None:
    changes = [_change(1), _change(2, "safe"), _change(3, "review"), _change(4, path="models/untouched.sql")]
    found = annotations(changes, {"models/a.sql"})
    assert [(a["start_line"], a["annotation_level"]) for a in found] == [(2, "failure"), (4, "warning")]


def test_more_than_fifty_annotations_go_out_in_several_updates() -> None:
    analysis = Analysis("b", "h", "needs_ack", changes=tuple(_change(n) for n in range(120)), required_acks=(GROWTH,))
    output = build_output(analysis, verdict([GROWTH], {}), changed_paths={"models/a.sql"}, details_url="http://x/checks/1")
    bodies = completion_requests(output, details_url="http://x/checks/1")
    assert [len(b["output"].get("annotations", [])) for b in bodies] == [50, 50, 20]
    assert bodies[0]["conclusion"] == "action_required" and bodies[0]["details_url"] == "http://x/checks/1"
    assert bodies[0]["actions"][0]["identifier"] == "recheck"
    assert all("conclusion" not in b for b in bodies[1:])


def test_the_summary_says_who_must_do_what() -> None:
    analysis = Analysis("b", "h", "needs_ack", changes=(_change(1),), required_acks=(GROWTH,))
    output = build_output(analysis, verdict([GROWTH], {}), changed_paths=set(), details_url="http://x/checks/7")
    assert "@acme/growth" in output.summary and "/tessera ack" in output.summary
    assert "http://x/checks/7" in output.summary


def test_an_analysis_survives_the_store_round_trip_with_fingerprints() -> None:
    analysis = Analysis(
        "b",
        "h",
        "needs_ack",
        changes=(_change(1),),
        impacts=(Impact("a", "dash", "exposure", "growth", ("c1",), ("COLUMN_REMOVED",), ("a", "dash")),),
        required_acks=(GROWTH,),
        migrations=(Migration("COLUMN_REMOVED", "a", "c1", "keep it", "select 1"),),
        errors=(AnalysisError("x.sql", "bad"),),
        projects=(Project("analytics", Dialect("bigquery", "requirements.txt: dbt-bigquery")),),
        detected=Detected(("exposures", "CODEOWNERS")),
    )
    assert analysis_from_json(analysis_to_json(analysis)) == analysis
    configured = Analysis("b", "h", "clear", projects=(Project(".", Dialect("snowflake", ".tessera.yml")),))
    assert analysis_from_json(analysis_to_json(configured)) == configured


def test_an_unconfigured_repository_gets_one_line_on_what_was_detected_and_how_to_refine_it() -> None:
    projects = (
        Project("marketing", Dialect("bigquery", "marketing/requirements.txt: dbt-bigquery")),
        Project(".", Dialect("postgres", "default")),
    )
    analysis = Analysis("b", "h", "clear", projects=projects, detected=Detected(()))
    summary = build_output(analysis, verdict([], {}), changed_paths=set(), details_url=None).summary
    hints = [line for line in summary.splitlines() if "tessera init" in line]
    assert hints == [
        "No `.tessera.yml`: read `marketing/` as BigQuery (`marketing/requirements.txt: dbt-bigquery`) and the root"
        " project as PostgreSQL (`default`); no owners found in dbt or CODEOWNERS. Run `tessera init` to refine."
    ]
    configured = Analysis("b", "h", "clear", projects=projects)
    assert "tessera init" not in build_output(configured, verdict([], {}), changed_paths=set(), details_url=None).summary


def test_a_huge_report_fits_in_one_comment_and_links_to_the_page() -> None:
    from app.workflow.comment import COMMENT_LIMIT, comment_body

    changes = tuple(
        Change("COLUMN_REMOVED", "breaking", f"asset_{n}", f"column_{n}", "m.sql", n, "removed " + "x" * 200)
        for n in range(3000)
    )
    analysis = Analysis("b", "h", "needs_ack", changes=changes, required_acks=(GROWTH,))
    override = AckRecord(OVERRIDE_TEAM, "override", "ada", reason="release train")
    body = comment_body(analysis, {}, details_url="https://tessera.example/checks/9.abc", override=override)
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith("<!-- tessera:impact -->")
    assert "https://tessera.example/checks/9.abc" in body and "Overridden by @ada" in body


def test_failing_audits_of_changed_assets_are_said_under_the_headline() -> None:
    from app.workflow.comment import comment_body

    analysis = Analysis("b", "h", "needs_ack", changes=(_change(1),), required_acks=(GROWTH,))
    audits = {"a": {"run_id": "wap-42", "status": "failed", "run_at": "2026-11-25T10:00:00Z", "failed": ["not_null_c1"]}}
    body = comment_body(analysis, {}, details_url=None, audits=audits)
    headline, note = body.split("\n")[1], body.split("\n\n")[1]
    assert headline.startswith("## ")
    assert "Failing data-quality audits" in note and "`wap-42`" in note and "`not_null_c1`" in note


def test_a_giant_override_reason_is_shown_clipped_and_inert_and_the_summary_keeps_its_verdict() -> None:
    reason = "@acme/everyone `x` " * 10_000
    override = AckRecord(OVERRIDE_TEAM, "override", "admin", fingerprint=overall_fingerprint([GROWTH]), reason=reason)
    analysis = Analysis(base="a" * 40, head="b" * 40, status="needs_ack", required_acks=(GROWTH,))
    output = build_output(analysis, verdict([GROWTH], {OVERRIDE_TEAM: override}), changed_paths=(), details_url=None)
    assert output.summary.startswith("Overridden by @admin: @\u2060acme/everyone \\`x\\` ")
    assert len(output.summary) < 10_000
    seen = render(output.summary)
    assert set(seen.mentions) == {"@admin", "@acme/growth"} and seen.code == []
