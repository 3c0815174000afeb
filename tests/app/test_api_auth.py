"""Who may call the registry API: keys, scopes, teams, the bootstrap key, dev mode."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.api import auth
from app.config import Settings
from app.errors import ConfigError
from app.store import registry as reg_sql
from tests.app import registry_support as support
from tests.app.registry_support import BOOTSTRAP, Api

api, api_settings = support.api, support.api_settings



async def test_a_request_without_a_key_is_401_with_a_message_saying_how_to_get_one(api: Api) -> None:
    status, body = await api.call("GET", "/teams", key=None)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert "Bearer" in body["error"]["message"]


async def test_the_bootstrap_key_acts_as_admin_and_creates_the_first_team(api: Api) -> None:
    status, body = await api.call("POST", "/teams", json={"slug": "growth", "name": "Growth", "github_team": "acme/growth"})
    assert status == 201
    assert body["slug"] == "growth" and body["github_team"] == "acme/growth"
    status, listed = await api.call("GET", "/teams")
    assert [t["slug"] for t in listed["items"]] == ["growth"]


async def test_a_wrong_bootstrap_key_is_refused(api: Api) -> None:
    status, body = await api.call("GET", "/teams", key=BOOTSTRAP + "x")
    assert status == 401


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(api: Api) -> None:
    await api.team("growth")
    status, created = await api.call("POST", "/teams/growth/keys", json={"scopes": ["read"], "expires_at": None})
    assert status == 201
    assert set(created) >= {"id", "key", "prefix", "scopes", "expires_at"}
    key = created["key"]
    assert key.startswith(f"tsk_{created['prefix']}_")
    stored = await api.store.read(lambda db: db.execute("SELECT * FROM api_keys").fetchall())
    assert all(key not in str(value) for row in stored for value in row)
    assert stored[0][2] == auth.hash_key(key)
    status, listed = await api.call("GET", "/teams/growth/keys")
    assert status == 200 and "key" not in listed["items"][0]
    assert listed["items"][0]["prefix"] == created["prefix"]


async def test_a_read_key_may_read_but_writing_is_403(api: Api) -> None:
    await api.team("growth")
    key = await api.key("growth", ["read"])
    assert (await api.call("GET", "/assets", key=key))[0] == 200
    status, body = await api.call("POST", "/registrations", key=key, json={"team": "growth", "asset": "fct_revenue"})
    assert status == 403
    assert "'write' scope" in body["error"]["message"]


async def test_a_team_key_cannot_register_for_another_team(api: Api) -> None:
    await api.team("growth")
    await api.team("finance")
    key = await api.key("growth", ["write"])
    status, body = await api.call("POST", "/registrations", key=key, json={"team": "finance", "asset": "fct_revenue"})
    assert status == 403
    assert "cannot act for team 'finance'" in body["error"]["message"]
    status, _ = await api.call("POST", "/registrations", key=key, json={"team": "growth", "asset": "fct_revenue"})
    assert status == 201


async def test_an_admin_key_speaks_for_every_team(api: Api) -> None:
    await api.team("platform")
    await api.team("finance")
    key = await api.key("platform", ["admin"])
    status, _ = await api.call("POST", "/registrations", key=key, json={"team": "finance", "asset": "fct_revenue"})
    assert status == 201
    assert (await api.call("POST", "/teams", key=key, json={"slug": "ops", "name": "Ops"}))[0] == 201


async def test_a_revoked_key_is_401(api: Api) -> None:
    await api.team("growth")
    key = await api.key("growth", ["write"])
    _, listed = await api.call("GET", "/teams/growth/keys")
    assert (await api.call("DELETE", f"/keys/{listed['items'][0]['id']}"))[0] == 204
    status, body = await api.call("GET", "/teams", key=key)
    assert status == 401
    assert "revoked" in body["error"]["message"]


async def test_an_expired_key_is_401(api: Api) -> None:
    await api.team("growth")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    key = await api.key("growth", ["read"], expires_at=soon)
    assert (await api.call("GET", "/teams", key=key))[0] == 200
    await api.store.write(lambda db: db.execute("UPDATE api_keys SET expires_at = 1"))
    status, body = await api.call("GET", "/teams", key=key)
    assert status == 401
    assert "expired" in body["error"]["message"]


async def test_a_key_cannot_be_created_already_expired(api: Api) -> None:
    await api.team("growth")
    status, body = await api.call("POST", "/teams/growth/keys", json={"scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"})
    assert status == 400
    assert "in the past" in body["error"]["message"]


async def test_a_made_up_key_in_the_right_shape_is_401(api: Api) -> None:
    status, body = await api.call("GET", "/teams", key="tsk_deadbeef_" + "A" * 43)
    assert status == 401 and "unknown API key" in body["error"]["message"]
    status, body = await api.call("GET", "/teams", key="not-a-key")
    assert status == 401


async def test_a_team_write_key_may_revoke_its_own_teams_keys_but_not_others(api: Api) -> None:
    await api.team("growth")
    await api.team("finance")
    growth = await api.key("growth", ["write"])
    await api.key("finance", ["read"])
    _, finance_keys = await api.call("GET", "/teams/finance/keys")
    status, _ = await api.call("DELETE", f"/keys/{finance_keys['items'][0]['id']}", key=growth)
    assert status == 403
    status, _ = await api.call("GET", "/teams/finance/keys", key=growth)
    assert status == 403


async def test_dev_mode_on_loopback_needs_no_key(make_client: Any, app_settings: Settings) -> None:
    client = await make_client(app_settings.with_overrides(dev_mode=True, host="127.0.0.1"), start_workers=False)
    response = await client.post("/api/v1/teams", json={"slug": "growth", "name": "Growth"})
    assert response.status == 201


async def test_dev_mode_on_a_public_bind_still_requires_keys(make_client: Any, app_settings: Settings) -> None:
    client = await make_client(app_settings.with_overrides(dev_mode=True, host="0.0.0.0"), start_workers=False)
    response = await client.get("/api/v1/teams")
    assert response.status == 401


def test_settings_refuse_dev_mode_on_a_public_bind() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        Settings.from_env({"TESSERA_DEV_MODE": "1", "TESSERA_HOST": "0.0.0.0"})
    assert Settings.from_env({"TESSERA_DEV_MODE": "1", "TESSERA_HOST": "127.0.0.1"}).dev_mode


def test_bootstrap_comparison_is_exact() -> None:
    settings = Settings(bootstrap_key="abc")
    assert auth.is_bootstrap(settings, "abc")
    assert not auth.is_bootstrap(settings, "abcd") and not auth.is_bootstrap(Settings(), "abc")


async def test_deleting_a_team_revokes_its_keys(api: Api) -> None:
    await api.team("growth")
    key = await api.key("growth", ["read"])
    assert (await api.call("DELETE", "/teams/growth"))[0] == 204
    assert (await api.call("GET", "/teams", key=key))[0] == 401
    keys = await api.store.read(lambda db: reg_sql.list_keys(db, "growth"))
    assert keys and all(k.revoked_at is not None for k in keys)
