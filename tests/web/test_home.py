"""The home page: what waits on me, my held pull requests, and the friction budget."""

from __future__ import annotations

import re

from app.store import proposals as sql
from app.web.home import DAY, friction_budgets, sparkline, sparkline_points
from tests.app.workflow_support import PullRequestFlow
from tests.web import support
from tests.web.support import sign_in

web_flow = support.web_flow

FCT = "models/marts/fct_revenue.sql"


async def test_home_lists_what_waits_on_my_team_until_we_answer(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    flow.fake.add_team_member("acme", "growth", "gina")
    flow.repo.set_permission("gina", "read")
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")
    await flow.open_pr({"models/marts/marts.yml": flow.repo.files_at("main")["models/marts/marts.yml"].decode() + "\n"})

    await sign_in(flow.client, flow.fake, "gina")
    html = await (await flow.client.get("/")).text()
    waiting = html.split('id="waiting-h"', 1)[1].split("</section>", 1)[0]
    assert f"acme/warehouse#{pull.number}" in waiting and "for growth" in waiting
    assert "acme/warehouse" in html.split('id="budget-h"', 1)[1]  # one of two passed untouched: 50 %
    assert re.search(r"<td>50\.0 %</td>", html) and "missed" in html
    assert '<circle cx="117" cy="14"' in html  # this week's 50 %, a point even without a line to draw

    await flow.comment(pull, "/tessera ack", user="gina")
    html = await (await flow.client.get("/")).text()
    assert "Nothing needs your answer." in html

    await sign_in(flow.client, flow.fake, "priya")
    html = await (await flow.client.get("/")).text()
    mine = html.split('id="mine-h"', 1)[1].split("</section>", 1)[0]
    assert "None of your pull requests is held." in mine  # acked: the check passed


async def test_home_without_sign_in_explains_and_offers_sign_in(web_flow: PullRequestFlow) -> None:
    page = await web_flow.client.get("/")
    html = await page.text()
    assert page.status == 200 and "Sign in with GitHub" in html and "Waiting on your teams" not in html


def test_the_friction_budget_is_the_share_untouched_in_30_days_with_weekly_trend() -> None:
    now = 100 * DAY
    rows = [("acme/a", now - 1 * DAY, True)] * 9 + [("acme/a", now - 2 * DAY, False)]
    rows += [("acme/b", now - 3 * DAY, False), ("acme/b", now - 40 * DAY, True), ("acme/b", now - 10 * DAY, True)]
    a, b = friction_budgets(rows, now)
    assert (a.repo, a.analysed, a.untouched, a.met) == ("acme/a", 10, 9, True)
    assert a.weekly[-1] == 0.9 and a.weekly[:-1] == (None,) * 5
    assert (b.analysed, b.untouched, b.met) == (2, 1, False)  # the 40-day-old one is outside the window
    assert b.weekly == (1.0, None, None, None, 1.0, 0.0)  # 40 days: the oldest of six weeks


async def test_analysed_since_counts_each_pull_request_once(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text + "\n-- touch\n"})
    await flow.push(pull, {FCT: text + "\n-- touch again\n"})
    rows = await flow.store.read(lambda db: sql.analysed_since(db, 0))
    assert [(r[0], r[2]) for r in rows] == [("acme/warehouse", True)]


def test_a_sparkline_of_one_week_is_one_point_and_weeks_without_pull_requests_are_gaps() -> None:
    assert sparkline_points((None,) * 5 + (0.5,)) == [(117, 14)]
    assert sparkline((1.0, None, None, None, 1.0, 0.0)) == "3,2 94,2 117,26"
