"""Outbound webhook subscriptions and their delivery logs; Slack channels and user links.

A subscription belongs to a team: the team's own write key (or an admin) manages it. Its secret
signs every delivery (:mod:`app.notify.webhooks`); a secret Tessera generates is shown once, in the
answer to the POST (or to a PATCH with ``"secret": null``, which rotates it). The URL is checked by
the SSRF guard when it is given (an address literal) and again on every connection (a name).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from app.api import auth
from app.api.common import (
    id_cursor,
    int_param,
    json_body,
    json_response,
    page,
    page_params,
    principal,
    settings,
    store,
    with_iso_times,
)
from app.api.errors import ApiError, not_found
from app.appkeys import OUTBOX_KEY
from app.notify import outbox, slack
from app.notify.ssrf import OutboundPolicy, OutboundRefused
from app.store import notify as sql
from app.store import proposals as log_sql
from app.store import registry as reg_sql


def _now(request: web.Request) -> float:
    return request.config_dict[OUTBOX_KEY].clock.now()


def _check_url(request: web.Request, url: str) -> str:
    try:
        OutboundPolicy.from_cidrs(settings(request).outbound_allow).check_url(url)
    except OutboundRefused as exc:
        raise ApiError(400, "invalid_body", f"body.url: {exc}") from None
    return url


async def _owned(request: web.Request, scope: str) -> sql.Subscription:
    subscription_id = int_param(request.match_info["id"], "subscription")
    subscription = await store(request).read(lambda db: sql.get_subscription(db, subscription_id))
    if subscription is None:
        raise not_found(f"no subscription {subscription_id}")
    auth.require_team(principal(request), subscription.team, scope)
    return subscription


async def list_subscriptions(request: web.Request) -> web.Response:
    who = principal(request)
    auth.require(who, "read")
    limit, cursor = page_params(request)
    team = request.query.get("team") or (None if who.is_admin else who.team)
    if team is not None:
        auth.require_team(who, team, "read")
    after = id_cursor(cursor)
    items = await store(request).read(lambda db: sql.list_subscriptions(db, team=team, after=after, limit=limit + 1))
    last = items[limit - 1].id if len(items) > limit else None
    return page(request, [with_iso_times(s.to_dict(), "created_at", "updated_at") for s in items], limit, last)


async def create_subscription(request: web.Request) -> web.Response:
    who = principal(request)
    body = await json_body(request, "SubscriptionCreate")
    auth.require_team(who, body["team"], "write")
    url = _check_url(request, body["url"])
    supplied = body.get("secret")
    secret = supplied or sql.new_secret()
    now = _now(request)

    def write(db: Any) -> sql.Subscription | None:
        if reg_sql.get_team(db, body["team"]) is None:
            return None
        made = sql.create_subscription(db, team=body["team"], url=url, events=body["events"], secret=secret,
                                       description=body.get("description", ""), created_by=who.actor, now=now)
        log_sql.audit(db, actor=who.actor, action="subscription_created", team=made.team,
                      detail={"subscription_id": made.id, "url": url, "events": list(made.events)})
        return made

    made = await store(request).write(write)
    if made is None:
        raise not_found(f"no team {body['team']!r}: create it first with POST /api/v1/teams")
    shown = with_iso_times(made.to_dict(), "created_at", "updated_at")
    if not supplied:
        shown["secret"] = secret
    return json_response(shown, status=201)


async def get_subscription(request: web.Request) -> web.Response:
    return json_response(with_iso_times((await _owned(request, "read")).to_dict(), "created_at", "updated_at"))


async def update_subscription(request: web.Request) -> web.Response:
    who = principal(request)
    subscription = await _owned(request, "write")
    body = await json_body(request, "SubscriptionUpdate")
    if "url" in body:
        _check_url(request, body["url"])
    rotated = None
    supplied = bool(body.get("secret"))
    if "secret" in body:
        rotated = body["secret"] or sql.new_secret()
        body["secret"] = rotated
    now = _now(request)

    def write(db: Any) -> sql.Subscription | None:
        updated = sql.update_subscription(db, subscription.id, body, now)
        detail = {k: v for k, v in body.items() if k != "secret"} | ({"secret": "rotated"} if rotated else {})
        log_sql.audit(db, actor=who.actor, action="subscription_updated", team=subscription.team,
                      detail={"subscription_id": subscription.id, **detail})
        return updated

    updated = await store(request).write(write)
    if updated is None:
        raise not_found(f"no subscription {subscription.id}")
    shown = with_iso_times(updated.to_dict(), "created_at", "updated_at")
    if rotated is not None and not supplied:
        shown["secret"] = rotated  # generated: shown this once
    return json_response(shown)


async def delete_subscription(request: web.Request) -> web.Response:
    who = principal(request)
    subscription = await _owned(request, "write")

    def write(db: Any) -> bool:
        deleted = sql.delete_subscription(db, subscription.id)
        log_sql.audit(db, actor=who.actor, action="subscription_deleted", team=subscription.team,
                      detail={"subscription_id": subscription.id, "url": subscription.url})
        return deleted

    await store(request).write(write)
    return web.Response(status=204)


async def list_deliveries(request: web.Request) -> web.Response:
    subscription = await _owned(request, "read")
    limit, cursor = page_params(request)
    before = id_cursor(cursor)
    items = await store(request).read(
        lambda db: sql.list_outbound(db, subscription_id=subscription.id, before=before or None, limit=limit + 1))
    last = items[limit - 1].id if len(items) > limit else None
    return page(request, [with_iso_times(d.to_dict(), "created_at", "next_attempt_at", "finished_at") for d in items], limit, last)


async def redeliver(request: web.Request) -> web.Response:
    who = principal(request)
    subscription = await _owned(request, "write")
    delivery_id = int_param(request.match_info["delivery_id"], "delivery")
    if not subscription.active:
        raise ApiError(409, "conflict", f"subscription {subscription.id} is disabled: PATCH it with"
                       ' {"active": true} first, then redeliver')
    now = _now(request)

    def write(db: Any) -> sql.Outbound | None | str:
        found = sql.get_outbound(db, delivery_id)
        if found is None or found.subscription_id != subscription.id:
            return None
        if found.status in ("queued", "running"):
            return found.status
        again = sql.requeue(db, delivery_id, now)
        log_sql.audit(db, actor=who.actor, action="delivery_redelivered", team=subscription.team,
                      detail={"subscription_id": subscription.id, "delivery_id": delivery_id})
        return again

    result = await store(request).write(write)
    if result is None:
        raise not_found(f"subscription {subscription.id} has no delivery {delivery_id}")
    if isinstance(result, str):
        raise ApiError(409, "conflict", f"delivery {delivery_id} is {result} already")
    outbox.ring()
    return json_response(with_iso_times(result.to_dict(), "created_at", "next_attempt_at", "finished_at"), status=202)


# --- Slack channels and user links ----------------------------------------------------------------


async def list_channels(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    channels = await store(request).read(sql.team_channels)
    return json_response({"items": [{"team": t, "channel": _shown(c)} for t, c in sorted(channels.items())]})


def _shown(channel: str) -> str:
    """An incoming-webhook URL is a secret: only its host is shown."""
    return f"incoming webhook ({URL(channel).host})" if slack.is_webhook(channel) else channel


def _webhook_channel(request: web.Request, channel: str) -> None:
    """An incoming-webhook channel must be Slack's own (``https://hooks.slack.com/``), or on the
    configured Web API's host (a proxy, or a test's fake)."""
    url, api = URL(channel), URL(settings(request).slack_api_url)
    if url.scheme == "https" and url.host == "hooks.slack.com":
        return
    if (url.scheme, url.host, url.port) == (api.scheme, api.host, api.port):
        return
    raise ApiError(400, "invalid_body", "body.channel: an incoming webhook URL must be https://hooks.slack.com/...")


async def set_channel(request: web.Request) -> web.Response:
    who = principal(request)
    body = await json_body(request, "SlackChannelSet")
    auth.require_team(who, body["team"], "write")
    now = _now(request)

    quiet, digest_at = body.get("quiet_hours"), body.get("digest_at")
    if body["channel"] and slack.is_webhook(body["channel"]):
        _webhook_channel(request, body["channel"])

    def write(db: Any) -> None:
        if body["channel"] is None:
            sql.delete_team_channel(db, body["team"])
        else:
            sql.set_team_channel(db, body["team"], body["channel"], f"api:{who.actor}", now)
            sql.set_team_options(db, body["team"], quiet_hours=quiet, digest_at=digest_at)
        log_sql.audit(db, actor=who.actor, action="slack_channel_set", team=body["team"],
                      detail={**body, "channel": _shown(body["channel"]) if body["channel"] else None})

    await store(request).write(write)
    return json_response({"team": body["team"], "channel": _shown(body["channel"]) if body["channel"] else None,
                          "quiet_hours": quiet,
                          "digest_at": digest_at})


async def list_links(request: web.Request) -> web.Response:
    auth.require(principal(request), "admin")
    links = await store(request).read(sql.list_slack_links)
    return json_response({"items": [with_iso_times(link, "linked_at") for link in links]})


async def create_link(request: web.Request) -> web.Response:
    """Link a Slack user to a GitHub login (until sign-in does it): only an admin vouches for that."""
    who = principal(request)
    auth.require(who, "admin")
    body = await json_body(request, "SlackLinkCreate")
    now = _now(request)

    def write(db: Any) -> None:
        sql.link_slack_user(db, body["slack_user"], body["github_login"], who.actor, now)
        log_sql.audit(db, actor=who.actor, action="slack_user_linked", detail=body)

    await store(request).write(write)
    return json_response({"slack_user": body["slack_user"], "github_login": body["github_login"]}, status=201)


async def delete_link(request: web.Request) -> web.Response:
    who = principal(request)
    auth.require(who, "admin")
    slack_user = request.match_info["slack_user"]

    def write(db: Any) -> bool:
        removed = sql.unlink_slack_user(db, slack_user)
        if removed:
            log_sql.audit(db, actor=who.actor, action="slack_user_unlinked", detail={"slack_user": slack_user})
        return removed

    if not await store(request).write(write):
        raise not_found(f"Slack user {slack_user!r} is not linked")
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/subscriptions", list_subscriptions),
        web.post("/subscriptions", create_subscription),
        web.get("/subscriptions/{id}", get_subscription),
        web.patch("/subscriptions/{id}", update_subscription),
        web.delete("/subscriptions/{id}", delete_subscription),
        web.get("/subscriptions/{id}/deliveries", list_deliveries),
        web.post("/subscriptions/{id}/deliveries/{delivery_id}/redeliver", redeliver),
        web.get("/slack/channels", list_channels),
        web.post("/slack/channels", set_channel),
        web.get("/slack/links", list_links),
        web.post("/slack/links", create_link),
        web.delete("/slack/links/{slack_user}", delete_link),
    ]
