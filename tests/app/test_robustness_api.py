"""The registry API under bad input: every malformed request is a 4xx with a message, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

from tests.app import registry_support as support
from tests.app.registry_support import Api

api, api_settings = support.api, support.api_settings

BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/assets?limit=-1", {}),
    ("GET", "/assets?limit=abc", {}),
    ("GET", "/assets?limit=99999999999999999999999", {}),
    ("GET", "/assets?cursor=%00%FF", {}),
    ("GET", "/assets/%00", {}),
    ("GET", "/assets/" + "a" * 5000, {}),
    ("GET", "/assets/fct_revenue/contracts/not-a-version", {}),
    ("GET", "/assets/fct_revenue/contracts/1.0.0?diff_from=%F0%9F%92%A5", {}),
    ("GET", "/assets/fct_revenue/impact?column=" + "x" * 5000, {}),
    ("GET", "/proposals/abc", {}),
    ("GET", "/proposals/99999999999999999999999", {}),
    ("GET", "/proposals?status=%00", {}),
    ("POST", "/proposals/1/acks", {"data": b"not json"}),
    ("POST", "/proposals/1/acks", {"json": {"team": "growth", "response": "ack" * 10000}}),
    ("GET", "/registrations/-1", {}),
    ("DELETE", "/registrations/abc", {}),
    ("POST", "/registrations", {"data": b"\xff\xfe\x00"}),
    ("POST", "/registrations", {"json": [1, 2, 3]}),
    ("POST", "/registrations", {"json": {"team": None, "asset": {"a": 1}}}),
    ("POST", "/teams", {"json": {"slug": "../../etc", "name": "x"}}),
    ("POST", "/teams", {"json": {"slug": "a" * 1000, "name": "x"}}),
    ("POST", "/teams", {"data": b"{" * 100_000}),
    ("PATCH", "/teams/nobody", {"json": {"name": 5}}),
    ("POST", "/teams/nobody/keys", {"json": {"scopes": ["root"]}}),
    ("POST", "/teams/nobody/keys", {"json": {"scopes": ["read"], "expires_at": "yesterday"}}),
    ("DELETE", "/keys/abc", {}),
    ("POST", "/sync/dbt", {"data": b"not json"}),
    ("POST", "/sync/dbt", {"json": {"repo": "acme/x", "commit": "abc", "manifest": "not a manifest"}}),
    ("POST", "/sync/dbt", {"json": {"repo": "acme/x", "commit": "abc", "manifest": {"nodes": {"model.x.y": 1}}}}),
    ("POST", "/sync/dbt", {"json": {"repo": "acme/x", "commit": "abc", "manifest": {"nodes": [], "metadata": None}}}),
    ("POST", "/assets/fct_revenue/audits", {"json": {"status": "exploded", "guarantees": "all"}}),
    ("POST", "/deliveries/%00/replay", {}),
    ("GET", "/audit-log?limit=-3", {}),
    ("GET", "/deliveries?status=%FF", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), BAD_REQUESTS, ids=[f"{m} {p[:50]}" for m, p, _ in BAD_REQUESTS])
async def test_a_malformed_request_is_answered_with_a_4xx_and_a_message(
    api: Api, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    await api.team("growth", "acme/growth")
    headers = {"Content-Type": "application/json"} if "data" in kwargs else {}
    status, body = await api.call(method, path, headers=headers, **kwargs)
    assert 400 <= status < 500, (status, body)
    assert isinstance(body, dict) and body.get("error", {}).get("message"), body


async def test_odd_but_valid_searches_answer_normally(api: Api) -> None:
    for query in ("%25" * 2000, "%27%3B drop table assets%3B--", "%E2%80%AE%F0%9F%92%A5", "_%25_"):
        status, body = await api.call("GET", f"/assets?q={query}")
        assert status == 200 and body["items"] == [], body


async def test_a_manifest_whose_model_loops_for_hours_is_refused_and_the_server_carries_on(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from pathlib import Path

    from app import registry_sync

    monkeypatch.setattr(registry_sync, "MANIFEST_SYNC_SECONDS", 1.5)
    manifest = json.loads((Path(__file__).parent.parent / "data" / "registry" / "manifest.json").read_text())
    node = manifest["nodes"]["model.analytics.fct_revenue"]
    node.pop("compiled_code", None)
    node["raw_code"] = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}select 1 as x"
    body = {"repo": "acme/warehouse", "commit": "a" * 40, "manifest": manifest, "project_dir": "analytics", "lineage": "columns"}
    status, answer = await api.call("POST", "/sync/dbt", json=body)
    assert status == 422, answer
    assert "took longer" in answer["error"]["message"]
    assert (await api.call("GET", "/teams"))[0] == 200
