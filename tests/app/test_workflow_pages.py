"""The ``/checks/{id}`` page: the whole report, escaped, behind an unguessable link."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow
from tests.rendered import render

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


async def test_the_details_page_shows_the_whole_report_with_everything_escaped(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    flow.fake.add_team_member("acme", "growth", "gina")
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    await flow.comment(pull, "/tessera block <script>alert(1)</script> breaks the board deck", user="gina")

    check = flow.check(pull)
    path = urlsplit(check.details_url).path
    response = await flow.client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert "acme/warehouse#" in html and "COLUMN_REMOVED" in html and "plan_code" in html
    assert "revenue_dashboard" in html and "@acme/growth" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_a_check_page_needs_the_signed_link(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    check = flow.check(pull)
    assert (await flow.client.get(f"/checks/{check.id}")).status == 404
    assert (await flow.client.get(f"/checks/{check.id}.0000000000")).status == 404
    assert (await flow.client.get("/checks/nothing")).status == 404
    assert (await flow.client.get(urlsplit(check.details_url).path)).status == 200


def test_links_go_to_github_or_the_enterprise_server() -> None:
    from app.workflow.pages import page_id, parse_page_id, web_url

    assert web_url("https://api.github.com") == "https://github.com"
    assert web_url("https://git.acme.test/api/v3/") == "https://git.acme.test"
    signed = page_id(42, "s3cret")
    assert parse_page_id(signed, "s3cret") == 42 and parse_page_id(signed, "other") is None
    assert page_id(42, None) == "42" and parse_page_id("42", None) == 42


HOSTILE_COLUMN = 'x` @acme/everyone <img src=x onerror=alert(1)> [win](https://evil.example) `y'


async def test_a_hostile_column_name_is_inert_in_the_comment_the_check_and_the_page(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    text = flow.repo.files_at("main")[FCT].decode()
    renamed = text.replace("    plan_code,\n", f'    plan_code as "{HOSTILE_COLUMN}",\n')
    pull = await flow.open_pr({FCT: renamed})
    [comment] = flow.impact_comments(pull)
    check = flow.check(pull)
    for body in (comment.body, check.output["summary"]):
        seen = render(body)
        assert set(seen.mentions) <= {"@acme/growth"}, body
        assert seen.unexpected_html == [], body
        assert all("evil.example" not in link for link in seen.links), body
    assert HOSTILE_COLUMN in render(comment.body).code  # the name whole, in one code span
    html = await (await flow.client.get(urlsplit(check.details_url).path)).text()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
