"""Observed consumers in the PR workflow: the comment names the reader and the check waits for its team."""

from __future__ import annotations

import datetime as dt

from app.store import observed as observed_sql
from app.store import registry
from app.store.observed import ObservedRead
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


def seen(days_ago: int, reader: str, queries: int) -> ObservedRead:
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).date().isoformat()
    return ObservedRead("analytics.fct_revenue", "role", reader, ("customer_id",), queries=queries,
                        last_seen=f"{day}T08:00:00+00:00", daily={day: queries})


async def test_a_column_an_observed_role_reads_waits_for_the_team_its_role_is_mapped_to(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await flow.store.write(lambda db: registry.create_team(db, "marketing", "Marketing", "acme/marketing"))
    await flow.store.write(lambda db: observed_sql.set_mapping(db, kind="role", name="LOOKER_FINANCE", team="marketing",
                                                               created_by="test"))
    await flow.store.write(lambda db: observed_sql.record(
        db, [seen(1, "LOOKER_FINANCE", 14), seen(60, "OLD_REPORTS", 5)], source_kind="snowflake"))
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    customer_id,\n", "")})

    check = flow.check(pull)
    assert check.conclusion == "action_required" and "@acme/marketing" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "read by 14 queries from role LOOKER_FINANCE in the last 30 days (marketing)" in comment.body
    assert "role OLD_REPORTS (not seen since" in comment.body  # listed, not required
    assert "OLD_REPORTS reads" not in comment.body  # a stale reader is not reported as unowned

    flow.fake.add_team_member("acme", "marketing", "mo")
    flow.fake.add_team_member("acme", "growth", "gina")
    await flow.comment(pull, "/tessera ack marketing", user="mo")
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"
