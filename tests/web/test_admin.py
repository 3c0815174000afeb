"""The admin page: only organisation owners; keys shown once and revoked; failed deliveries redelivered."""

from __future__ import annotations

import re
from typing import Any

from app.store import proposals as sql
from app.store import registry as reg_sql
from tests.app.registry_support import bearer
from tests.app.workflow_support import PullRequestFlow
from tests.web import support
from tests.web.support import CSRF, sign_in

both = support.both

KEY = re.compile(r'<code id="new-key">(tsk_[^<]+)</code>')


async def test_an_org_owner_creates_a_key_that_is_shown_once_and_works_then_revokes_it(both: Any) -> None:
    flow, api = both
    flow.fake.set_org_role("acme", "olga", "admin")
    await sign_in(flow.client, flow.fake, "olga")
    page = await flow.client.get("/admin")
    html = await page.text()
    assert page.status == 200 and "Growth Analytics" in html and "@acme/growth" in html
    token = CSRF.search(html).group(1)

    made = await flow.client.post("/admin/keys", data={"csrf": token, "team": "growth", "scope": "read"})
    html = await made.text()
    key = KEY.search(html).group(1)
    status, _ = await api.call("GET", "/assets/fct_revenue", key=key)
    assert status == 200
    again = await (await flow.client.get("/admin")).text()
    assert key not in again and key.split("_")[1] in again  # the prefix stays, the secret never again

    stored = await flow.store.read(lambda db: reg_sql.list_keys(db, "growth"))
    revoked = await flow.client.post(f"/admin/keys/{stored[0].id}/revoke", data={"csrf": token}, allow_redirects=False)
    assert revoked.status == 303
    assert (await flow.client.get("/api/v1/assets/fct_revenue", headers=bearer(key))).status == 401
    log = await flow.store.read(lambda db: sql.list_audit(db, team="growth"))
    assert [e["action"] for e in log[:2]] == ["key_revoked", "key_created"] and log[0]["actor"] == "user:olga"


async def test_a_member_who_is_not_an_owner_is_refused_and_cannot_forge_a_key(both: Any) -> None:
    flow, _ = both
    flow.fake.set_org_role("acme", "gina", "member")
    await sign_in(flow.client, flow.fake, "gina")
    page = await flow.client.get("/admin")
    assert page.status == 403 and "Admins only" in await page.text()
    token = CSRF.search(await page.text()).group(1)
    forged = await flow.client.post("/admin/keys", data={"csrf": token, "team": "growth", "scope": "admin"})
    assert forged.status == 403
    assert await flow.store.read(lambda db: reg_sql.list_keys(db, "growth")) == []


async def test_a_failed_delivery_is_redelivered_from_the_admin_page(both: Any) -> None:
    flow: PullRequestFlow = both[0]
    flow.fake.set_org_role("acme", "olga", "admin")
    delivery_id = flow.deliveries[-1]
    await flow.store.write(lambda db: db.execute(
        "UPDATE deliveries SET status = 'failed', last_error = 'GitHub kept failing' WHERE delivery_id = ?", (delivery_id,)))
    await sign_in(flow.client, flow.fake, "olga")
    html = await (await flow.client.get("/admin")).text()
    assert "GitHub kept failing" in html and f"Redeliver {delivery_id}" in html
    answer = await flow.client.post(f"/admin/deliveries/{delivery_id}/redeliver",
                                    data={"csrf": CSRF.search(html).group(1)}, allow_redirects=False)
    assert answer.status == 303
    delivery = await flow.store.get_delivery(delivery_id)
    assert delivery.status in ("queued", "running", "done")
