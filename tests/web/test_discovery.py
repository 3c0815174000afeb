"""The discovery page: unmapped readers grouped, mapped to a team in one step by its members (or
an organisation owner), the open pull requests they read analysed again; forged posts refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.config import Settings
from app.store import observed as observed_sql
from app.store import proposals as sql
from app.store.observed import ObservedRead
from tests.app.registry_support import BOOTSTRAP, Api
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub, FakePull
from tests.fixtures_app import wait_until
from tests.fixtures_github import INSTALLATION_ID
from tests.web.support import CSRF, FCT, sign_in, web_settings

DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()


def looker_finance() -> ObservedRead:
    return ObservedRead("fct_revenue", "role", "LOOKER_FINANCE", ("plan_code", "revenue"), queries=14,
                        last_seen=f"{DAY}T08:00:00+00:00", daily={DAY: 14})


@pytest.fixture
async def observed(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Settings
) -> AsyncIterator[tuple[PullRequestFlow, FakePull]]:
    """The registry synced, a Marketing team (member: mo), role LOOKER_FINANCE seen reading
    ``fct_revenue.plan_code`` and mapped to nobody, and a pull request dropping ``plan_code``."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    client = await make_client(web_settings(app_settings, fake_github, bootstrap_key=BOOTSTRAP), github=github_app)
    flow = PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)
    api = Api(client=client, store=store)
    await api.warehouse()
    await api.team("marketing", "acme/marketing", name="Marketing")
    fake_github.add_team_member("acme", "marketing", "mo")
    await store.write(lambda db: observed_sql.record(db, [looker_finance()], source_kind="snowflake"))
    text = repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")
    yield flow, pull


async def test_a_team_member_maps_an_unmapped_role_from_the_page_and_the_open_check_waits_for_the_team(
    observed: tuple[PullRequestFlow, FakePull],
) -> None:
    flow, pull = observed
    assert "@acme/marketing" not in flow.check(pull).output["title"]
    assert "no team is mapped to role LOOKER_FINANCE" in flow.impact_comments(pull)[0].body
    await sign_in(flow.client, flow.fake, "mo")
    page = await flow.client.get("/discovery")
    html = await page.text()
    assert page.status == 200
    unmapped = html.split('id="unmapped-h"', 1)[1].split("<h2", 1)[0]
    row = unmapped.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "warehouse role <code>LOOKER_FINANCE</code>" in row and "<td>14</td>" in row
    assert '<a href="/assets/fct_revenue">fct_revenue</a>' in row and f"<td>{DAY}</td>" in row
    assert 'id="runs-h"' not in html  # the sources' runs are for organisation owners
    token = CSRF.search(html).group(1)

    mapped = await flow.client.post("/discovery/mappings", allow_redirects=False, data={
        "csrf": token, "kind": "role", "name": "LOOKER_FINANCE", "team": "marketing"})
    assert mapped.status == 303 and mapped.headers["Location"] == "/discovery?done=mapped&rechecks=1#unmapped-h"
    mappings = await flow.store.read(observed_sql.list_mappings)
    assert [(m["kind"], m["name"], m["team"], m["created_by"]) for m in mappings] == [
        ("role", "looker_finance", "marketing", "user:mo")]
    log = await flow.store.read(lambda db: sql.list_audit(db, team="marketing"))
    assert (log[0]["action"], log[0]["actor"], log[0]["detail"]) == (
        "discovery_mapped", "user:mo", {"kind": "role", "name": "looker_finance"})

    check = await wait_until(
        lambda: "@acme/marketing" in flow.check(pull).output.get("title", "") and flow.check(pull), timeout=30)
    assert check.conclusion == "action_required"
    assert "read by 14 queries from role LOOKER_FINANCE in the last 30 days (marketing)" in (
        flow.impact_comments(pull)[0].body)
    after = await (await flow.client.get(mapped.headers["Location"])).text()
    assert "Mapped. 1 open pull request it reads is analysed again." in after
    assert "LOOKER_FINANCE" not in after.split('id="unmapped-h"', 1)[1].split("<h2", 1)[0]
    assert "<code>looker_finance</code>" in after.split('id="mappings-h"', 1)[1]
    asset = await (await flow.client.get("/assets/fct_revenue")).text()
    consumers = asset.split('id="consumers-h"', 1)[1].split("<h2", 1)[0]
    assert ('observed role <code>LOOKER_FINANCE</code> · <a href="/teams/marketing">marketing</a>: plan_code, revenue'
            f' <span class="muted">(14 queries in 30 days from snowflake, last {DAY})</span>') in consumers


async def test_a_forged_or_unentitled_mapping_post_is_refused_and_nothing_is_mapped(
    observed: tuple[PullRequestFlow, FakePull],
) -> None:
    flow, _ = observed
    form = {"kind": "role", "name": "LOOKER_FINANCE", "team": "marketing"}
    anonymous = await flow.client.post("/discovery/mappings", data=form)
    assert anonymous.status == 401 and "Sign in first" in await anonymous.text()

    await sign_in(flow.client, flow.fake, "mo")
    no_token = await flow.client.post("/discovery/mappings", data=form)
    assert no_token.status == 403 and "security token did not match" in await no_token.text()
    wrong_token = await flow.client.post("/discovery/mappings", data={**form, "csrf": "0" * 40})
    assert wrong_token.status == 403 and "security token did not match" in await wrong_token.text()

    await sign_in(flow.client, flow.fake, "bob")  # signed in, but in no team and no owner
    token = CSRF.search(await (await flow.client.get("/discovery")).text()).group(1)
    stranger = await flow.client.post("/discovery/mappings", data={**form, "csrf": token})
    assert stranger.status == 403 and "Only active members of @acme/marketing" in await stranger.text()
    unknown = await flow.client.post("/discovery/mappings", data={**form, "csrf": token, "team": "nope"})
    assert unknown.status == 400 and "No team &#39;nope&#39;" in await unknown.text()
    assert await flow.store.read(observed_sql.list_mappings) == []
    assert [e for e in await flow.store.read(lambda db: sql.list_audit(db, team="marketing"))
            if e["action"] == "discovery_mapped"] == []


async def test_an_owner_maps_a_reader_to_any_team_and_sees_what_each_source_read(
    observed: tuple[PullRequestFlow, FakePull],
) -> None:
    flow, _ = observed
    await flow.store.write(lambda db: observed_sql.save_watermark(
        db, "/exports/history.csv", kind="snowflake", state={},
        last_run={"rows": 300, "skipped": 0, "unparsed": 2, "malformed": 1, "examples": ["history.csv:7: no query text"]}))
    flow.fake.set_org_role("acme", "olga", "admin")
    await sign_in(flow.client, flow.fake, "olga")
    html = await (await flow.client.get("/discovery")).text()
    runs = html.split('id="runs-h"', 1)[1]
    assert "300 rows" in runs and "2 queries not parsed, 1 malformed rows" in runs and "no query text" in runs
    token = CSRF.search(html).group(1)
    mapped = await flow.client.post("/discovery/mappings", allow_redirects=False, data={
        "csrf": token, "kind": "role", "name": "LOOKER_FINANCE", "team": "growth"})
    assert mapped.status == 303
    assert [(m["name"], m["team"]) for m in await flow.store.read(observed_sql.list_mappings)] == [
        ("looker_finance", "growth")]


async def test_a_reader_name_from_a_query_log_is_shown_escaped(observed: tuple[PullRequestFlow, FakePull]) -> None:
    flow, _ = observed
    evil = ObservedRead("fct_revenue", "user", '<script>alert(1)</script>"x', ("revenue",), queries=1,
                        last_seen=f"{DAY}T08:00:00+00:00", daily={DAY: 1})
    await flow.store.write(lambda db: observed_sql.record(db, [evil], source_kind="jsonl"))
    await sign_in(flow.client, flow.fake, "mo")
    html = await (await flow.client.get("/discovery")).text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&#34;x" in html
