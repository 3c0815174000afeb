"""The check page names the readers Tessera does not know of a mart nothing in the repository reads."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.app.test_workflow_unknown_readers import FCT, _leaf_mart
from tests.app.workflow_support import PullRequestFlow
from tests.web import support

web_flow = support.web_flow


async def test_the_check_page_names_the_readers_tessera_does_not_know(web_flow: PullRequestFlow) -> None:
    flow = web_flow
    files = _leaf_mart()
    flow.use_repo("acme/unknown-page", files)
    pull = await flow.open_pr({FCT: files[FCT].replace("    plan_code,\n", "")}, author="priya")
    page = await flow.client.get(urlsplit(flow.check(pull).details_url).path)
    html = await page.text()
    assert page.status == 200
    assert "readers of fct_revenue Tessera does not know" in html
    assert "(no exposure, registration or observed query)" in html
