"""Signing in with GitHub, and answering a pull request from its proposal page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from app.store import proposals as sql
from app.web.session import SESSION_COOKIE
from app.web.signin import safe_next
from tests.app.workflow_support import PullRequestFlow
from tests.fakegithub import server_error
from tests.web import support
from tests.web.support import sign_in

web_flow = support.web_flow

FCT = "models/marts/fct_revenue.sql"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _breaking_pr(flow: PullRequestFlow) -> Any:
    flow.fake.add_team_member("acme", "growth", "gina")
    flow.repo.set_permission("gina", "read")
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")
    proposal = await flow.store.read(lambda db: sql.get_proposal(db, flow.repo.id, pull.number))
    return pull, proposal


async def test_signing_in_sets_an_http_only_same_site_session_and_returns_to_the_page(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    answer = await sign_in(flow.client, flow.fake, "gina", next_path="/assets?q=revenue")
    assert answer.status == 302 and answer.headers["Location"] == "/assets?q=revenue"
    cookie = answer.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    home = await flow.client.get("/")
    assert "Signed in as <strong>@gina</strong>" in await home.text()


async def test_the_authorize_request_carries_state_and_a_pkce_challenge(web_flow: PullRequestFlow) -> None:
    start = await web_flow.client.get("/auth/github/login", allow_redirects=False)
    target = URL(start.headers["Location"])
    assert target.path == "/login/oauth/authorize"
    assert target.query["code_challenge_method"] == "S256" and len(target.query["state"]) >= 32
    assert target.query["client_id"] == web_flow.fake.oauth_client_id


async def test_a_callback_with_another_state_is_refused(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    flow.fake.sign_in_as("gina")
    await flow.client.get("/auth/github/login", allow_redirects=False)
    answer = await flow.client.get("/auth/github/callback?code=abc&state=forged", allow_redirects=False)
    assert answer.status == 400
    assert "does not belong to a sign-in started here" in await answer.text()
    assert SESSION_COOKIE not in answer.cookies


async def test_a_code_github_refuses_is_a_clear_page_not_a_crash(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    start = await flow.client.get("/auth/github/login", allow_redirects=False)
    state = URL(start.headers["Location"]).query["state"]
    answer = await flow.client.get(f"/auth/github/callback?code=stolen&state={state}", allow_redirects=False)
    assert answer.status == 400
    assert "GitHub refused the sign-in code (bad_verification_code)" in await answer.text()


def test_after_sign_in_only_a_path_on_this_site_is_followed() -> None:
    assert safe_next("/proposals/3") == "/proposals/3"
    assert safe_next("//evil.test/x") == "/" and safe_next("https://evil.test") == "/" and safe_next("/\\evil") == "/"


async def test_a_proposal_page_needs_sign_in_and_access_to_the_repository(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    _, proposal = await _breaking_pr(flow)
    anonymous = await flow.client.get(f"/proposals/{proposal.id}")
    assert anonymous.status == 401 and "Sign in with GitHub" in await anonymous.text()
    await sign_in(flow.client, flow.fake, "mallory")
    outsider = await flow.client.get(f"/proposals/{proposal.id}")
    assert outsider.status == 404 and "fct_revenue" not in await outsider.text()


async def test_a_member_acks_from_the_page_and_the_check_and_comment_follow(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    pull, proposal = await _breaking_pr(flow)
    assert flow.check(pull).conclusion == "action_required"
    await sign_in(flow.client, flow.fake, "gina")
    page = await flow.client.get(f"/proposals/{proposal.id}")
    html = await page.text()
    assert page.status == 200 and "Acknowledge for" in html and '<option value="growth">' in html
    assert "<code>plan_code</code>" in html and "`" not in html.split("<main", 1)[1].split("</main>")[0]

    token = CSRF.search(html).group(1)
    answer = await flow.client.post(
        f"/proposals/{proposal.id}/respond", data={"csrf": token, "verb": "ack", "team": "growth"}, allow_redirects=False
    )
    assert answer.status == 303, await answer.text()
    assert flow.check(pull).conclusion == "success"
    comment = flow.impact_comments(pull)[-1]
    assert "acknowledged by @gina" in comment.body
    entries = await flow.store.read(lambda db: sql.list_audit(db, repo="acme/warehouse", action="ack"))
    assert entries[0]["actor"] == "gina" and entries[0]["detail"]["source"] == "page"
    after = await (await flow.client.get(answer.headers["Location"])).text()
    assert "Acknowledged." in after and "acknowledged by @gina" in after


async def test_a_non_member_sees_no_buttons_and_a_forged_answer_is_refused(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    pull, proposal = await _breaking_pr(flow)
    flow.repo.set_permission("bob", "read")
    await sign_in(flow.client, flow.fake, "bob")
    html = await (await flow.client.get(f"/proposals/{proposal.id}")).text()
    assert "Acknowledge for" not in html and "Who must respond" in html
    token = CSRF.search(html).group(1)  # the sign-out form's

    forged = await flow.client.post(f"/proposals/{proposal.id}/respond", data={"verb": "ack", "team": "growth"})
    assert forged.status == 403 and "security token did not match" in await forged.text()
    refused = await flow.client.post(
        f"/proposals/{proposal.id}/respond", data={"csrf": token, "verb": "ack", "team": "growth"}
    )
    assert refused.status == 403
    assert "@bob only active members of @acme/growth can speak for it." in await refused.text()
    assert flow.check(pull).conclusion == "action_required"
    assert await flow.store.read(lambda db: sql.list_acks(db, proposal.id)) == {}


async def test_the_check_link_still_opens_without_sign_in(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    pull, _ = await _breaking_pr(flow)
    page = await flow.client.get(urlsplit(flow.check(pull).details_url).path)
    html = await page.text()
    assert page.status == 200 and "COLUMN_REMOVED" in html and "Who must respond" in html
    assert "UNKNOWN →" not in html and 'href="/static/tessera.css"' in html


async def test_a_blocks_reason_on_the_page_cannot_smuggle_a_second_command(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    pull, proposal = await _breaking_pr(flow)
    await sign_in(flow.client, flow.fake, "gina")
    token = CSRF.search(await (await flow.client.get(f"/proposals/{proposal.id}")).text()).group(1)
    reason = "board deck\n/tessera ack growth"
    answer = await flow.client.post(
        f"/proposals/{proposal.id}/respond",
        data={"csrf": token, "verb": "block", "team": "growth", "reason": reason}, allow_redirects=False,
    )
    assert answer.status == 303
    acks = await flow.store.read(lambda db: sql.list_acks(db, proposal.id))
    assert acks["growth"].response == "block" and acks["growth"].reason == "board deck /tessera ack growth"
    assert flow.check(pull).conclusion == "failure"


async def test_when_github_fails_the_page_says_so_and_nothing_is_recorded(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    pull, proposal = await _breaking_pr(flow)
    await sign_in(flow.client, flow.fake, "gina")
    flow.fake.script("GET", "/orgs/acme/teams/growth/memberships/*", *[server_error(502)] * 12)
    page = await flow.client.get(f"/proposals/{proposal.id}")
    html = await page.text()
    assert page.status == 200 and "GitHub could not be asked who may respond here" in html
    token = CSRF.search(html).group(1)
    answer = await flow.client.post(
        f"/proposals/{proposal.id}/respond", data={"csrf": token, "verb": "ack", "team": "growth"})
    assert answer.status == 502 and "GitHub could not be reached to record your answer" in await answer.text()
    assert flow.check(pull).conclusion == "action_required"
    assert await flow.store.read(lambda db: sql.list_acks(db, proposal.id)) == {}
