"""Where the workflow tells people: each hook turns one moment into outbound messages.

The hooks only store messages (in the same durable store, with idempotency keys) and ring the
outbound queue; they never call Slack or a subscriber themselves, so an outage there can neither
slow nor fail pull-request work, and a job re-run after a crash stores nothing twice.

- :func:`proposal_published` (after every analysis and every command): each asked team's Slack
  message (posted once, then edited in place), ``proposal.opened``, ``proposal.ack_required`` and
  ``proposal.acked`` for subscribers.
- :func:`proposal_closed` (merged or closed): the messages say so; ``proposal.resolved``.
- :func:`contracts_published` (after a merge): ``contract.published``.
- :func:`audit_run_reported` (a WAP run stored): alerts that fire or clear become ``audit.alert`` and
  a notice in the owning team's channel.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlite_utils

from app import audits as audit_rules
from app.config import Settings
from app.github import InstallationClient
from app.notify import outbox, slack
from app.notify.slack import TeamAsk, TeamState
from app.queue import JobContext
from app.store import Store
from app.store import notify as sql
from app.store import registry as reg_sql
from app.store.proposals import Proposal
from app.workflow.acks import Verdict
from app.workflow.checkout import read_config
from app.workflow.github_source import BlobFetcher, load_tree
from app.workflow.serialize import analysis_from_json
from rules.analyze import CONFIG_PATH
from rules.model import Analysis

log = logging.getLogger(__name__)

TEAM_MESSAGE = "slack.team_message"


@dataclass(frozen=True)
class Moment:
    """What every hook needs from its caller (a job's context, or the API's request)."""

    store: Store
    settings: Settings
    now: float


def moment(ctx: JobContext) -> Moment:
    """From a job's :class:`app.queue.JobContext`."""
    return Moment(store=ctx.store, settings=ctx.settings, now=ctx.clock.now())


# --- proposals ------------------------------------------------------------------------------------


def team_state(state: str, user: str | None, deadline: object, reason: str) -> TeamState:
    if state == "missing":
        return TeamState("asked")
    if state == "migrating":
        return TeamState("migrating", user, f"by {deadline}" if deadline else "")
    if state == "blocked":
        return TeamState("blocked", user, reason)
    return TeamState(state, user)


def team_ask(settings: Settings, proposal: Proposal, analysis: Analysis, team: str, page_url: str | None) -> TeamAsk:
    """The team's part of the analysis: the breaking changes that reach it, and its readers."""
    impacts = [i for i in analysis.impacts if i.team == team]
    assets = {i.asset for i in impacts}
    columns = {(i.asset, c) for i in impacts for c in i.columns}
    changes = []
    for change in analysis.changes:
        if change.severity != "breaking" or change.asset not in assets:
            continue
        if change.column and columns and (change.asset, change.column) not in columns and any(
            a == change.asset for a, _ in columns
        ):
            continue
        where = f"{change.asset}.{change.column}" if change.column else change.asset
        changes.append(f"{where}: {change.rule}" + (f" ({change.message})" if change.message else ""))
    readers = [
        f"{i.consumer} ({i.consumer_type})" + (f" reads {', '.join(i.columns)}" if i.columns else "")
        for i in impacts
    ]
    return TeamAsk(
        proposal_id=proposal.id, team=team, repo=proposal.repo, pr_number=proposal.pr_number,
        title=proposal.title or "", author=proposal.author or "",
        pr_url=slack.pr_web_url(settings.github_api_url, proposal.repo, proposal.pr_number), page_url=page_url,
        changes=slack.changes_for(changes), readers=tuple(dict.fromkeys(readers)),
    )


CONFIG_SECONDS = 5.0
"""Reading ``.tessera.yml`` for its channels (bounded: a YAML bomb must not hold a worker here either)."""


async def proposal_published(
    ctx: JobContext, gh: InstallationClient, proposal: Proposal, analysis: Analysis, verdict: Verdict, *, page_url: str | None,
    quiet: bool = False,
) -> None:
    """After an analysis or a command: bring every asked team's message and subscriber up to date.
    Never raises: telling people must not fail the pull request's job."""
    try:
        channels = await channels_for(ctx, gh, proposal, analysis.base)
        await _proposal_messages(moment(ctx), proposal, analysis, verdict, channels, page_url=page_url, quiet=quiet)
    except Exception:  # noqa: BLE001 - logged; the PR's comment and check are what must not fail
        log.exception("%s#%s: could not queue notifications", proposal.repo, proposal.pr_number)


async def _proposal_messages(
    at: Moment, proposal: Proposal, analysis: Analysis, verdict: Verdict, channels: Mapping[str, str], *,
    page_url: str | None, quiet: bool,
) -> None:
    kinds = {r.team: r for r in analysis.required_acks}
    overridden = verdict.override is not None
    slack_on = bool(at.settings.slack_bot_token)
    teams: list[tuple[str, TeamState, TeamAsk, str | None]] = []
    for status in verdict.statuses:
        need = kinds.get(status.team)
        if need is None or need.kind != "team" or need.maintainers:
            continue
        state = TeamState("overridden", verdict.override.user if verdict.override else None, verdict.override.reason
                          if verdict.override else "") if overridden else team_state(
            status.state, status.user, status.deadline, status.reason)
        ask = team_ask(at.settings, proposal, analysis, status.team, page_url)
        teams.append((status.team, state, ask, channels.get(status.team)))
    fingerprints = {r.team: r.fingerprint for r in analysis.required_acks}
    events: list[tuple[str, str, dict[str, Any]]] = []
    if teams and not quiet:
        events.append(("proposal.opened", f"{proposal.id}", _proposal_data(at.settings, proposal, analysis, page_url)))
    for team, state, _ask, _ in teams:
        data = {**_proposal_data(at.settings, proposal, analysis, page_url, team=team),
                "team": team, "state": state.state, "user": state.user, "detail": state.detail}
        if state.state in ("asked", "invalidated") and not quiet:
            events.append(("proposal.ack_required", f"{proposal.id}:{team}:{fingerprints.get(team, '')}", data))
        elif state.state == "acked":
            events.append(("proposal.acked", f"{proposal.id}:{team}:{fingerprints.get(team, '')}", data))
    if overridden and verdict.override is not None:
        events.append(("proposal.resolved", f"{proposal.id}:overridden:{verdict.override.fingerprint}", {
            **_proposal_data(at.settings, proposal, analysis, page_url), "resolution": "overridden",
            "user": verdict.override.user, "reason": verdict.override.reason}))

    def write(db: sqlite_utils.Database) -> int:
        added = _subscriber_events(db, events, at.now)
        for _team, state, ask, channel in teams:
            if channel is not None and (slack_on or slack.is_webhook(channel)):
                added += _team_message(db, ask, state, channel, at.now, may_start=state.open and not quiet)
        return added

    if await at.store.write(write):
        outbox.ring()


def _team_message(db: sqlite_utils.Database, ask: TeamAsk, state: TeamState, channel: str, now: float, *,
                  may_start: bool) -> int:
    """Queue the team's message in its new state, unless it already says that. A team never asked
    (nothing posted, nothing queued) gets no message about an outcome it did not take part in."""
    existing = sql.get_slack_message(db, ask.proposal_id, ask.team)
    if existing is None and not may_start:
        return 0
    interactive = not slack.is_webhook(channel)
    content = slack.message(ask, state, interactive=interactive)
    # The link to the check's page changes with every analysis; alone it is no reason to edit.
    digest = slack.content_hash({"channel": channel, **slack.message(replace(ask, page_url=None), state,
                                                                     interactive=interactive)})
    if not sql.note_slack_state(db, ask.proposal_id, ask.team, channel, digest, state.state, now):
        return 0
    prefs = sql.team_prefs(db, ask.team)
    fresh = existing is None or existing.ts is None
    if prefs is not None and prefs.digest_at and fresh:
        return 0  # the team hears about it in its daily digest
    body = {"op": "team_message", "proposal_id": ask.proposal_id, "team": ask.team, "channel": channel, **content}
    key = f"slack:{ask.proposal_id}:{ask.team}"
    if sql.replace_queued_body(db, key, TEAM_MESSAGE, body):
        return 1
    # A new message waits out the team's quiet hours; an edit of one already there notifies nobody.
    later = slack.quiet_until(now, prefs.quiet_hours if prefs else None) if fresh else None
    return sql.enqueue(db, [sql.NewOutbound(f"{key}:{digest}", "slack", TEAM_MESSAGE, key, body, run_after=later)], now)


def _subscriber_events(db: sqlite_utils.Database, events: Sequence[tuple[str, str, Mapping[str, Any]]], now: float) -> int:
    """One delivery per subscriber per event, keyed so the same event is never stored twice."""
    items: list[sql.NewOutbound] = []
    for event, key, data in events:
        for subscription in sql.subscribers_for(db, event):
            idem = f"webhook:{subscription.id}:{event}:{key}"
            items.append(sql.NewOutbound(idem, "webhook", event, idem, {"data": dict(data)}, subscription_id=subscription.id))
    return sql.enqueue(db, items, now) if items else 0


def _proposal_data(settings: Settings, proposal: Proposal, analysis: Analysis | None, page_url: str | None, *,
                   team: str | None = None) -> dict[str, Any]:
    """The ``proposal`` object of every proposal event (see the OpenAPI document's webhooks)."""
    data: dict[str, Any] = {
        "proposal": {
            "id": proposal.id, "repo": proposal.repo, "pr_number": proposal.pr_number, "title": proposal.title,
            "author": proposal.author, "status": proposal.status, "head_sha": proposal.head_sha,
            "url": slack.pr_web_url(settings.github_api_url, proposal.repo, proposal.pr_number), "page_url": page_url,
        },
    }
    if analysis is not None:
        data["required_acks"] = [
            {"team": r.team, "github_team": r.github_team, "reasons": list(r.reasons)} for r in analysis.required_acks
        ]
        data["changes"] = [
            {"rule": c.rule, "severity": c.severity, "asset": c.asset, "column": c.column, "message": c.message}
            for c in analysis.changes if c.severity == "breaking"
        ]
        data["impacts"] = [
            {"asset": i.asset, "consumer": i.consumer, "consumer_type": i.consumer_type, "team": i.team,
             "columns": list(i.columns)}
            for i in analysis.impacts if team is None or i.team == team
        ]
    return data


async def proposal_closed(ctx: JobContext, proposal: Proposal, *, merged: bool) -> None:
    """Merged or closed: every team's message says so (no button), subscribers hear ``proposal.resolved``."""
    try:
        await _closed(moment(ctx), proposal, merged=merged)
    except Exception:  # noqa: BLE001
        log.exception("%s#%s: could not queue notifications", proposal.repo, proposal.pr_number)


async def _closed(at: Moment, proposal: Proposal, *, merged: bool) -> None:
    analysis = analysis_from_json(proposal.analysis) if proposal.analysis else None
    resolution = "merged" if merged else "closed"
    data = {**_proposal_data(at.settings, proposal, analysis, None), "resolution": resolution}

    def write(db: sqlite_utils.Database) -> int:
        added = _subscriber_events(db, [("proposal.resolved", f"{proposal.id}:{resolution}", data)], at.now)
        if analysis is None:
            return added
        for existing in sql.slack_messages_for(db, proposal.id):
            if existing.state in ("overridden",) or not (at.settings.slack_bot_token or slack.is_webhook(existing.channel)):
                continue
            ask = team_ask(at.settings, proposal, analysis, existing.team, None)
            added += _team_message(db, ask, TeamState(resolution), existing.channel, at.now, may_start=False)
        return added

    if await at.store.write(write):
        outbox.ring()


async def contracts_published(ctx: JobContext, proposal: Proposal, published: Sequence[tuple[str, str]]) -> None:
    """``contract.published`` for each new contract version a merge published."""
    if not published:
        return
    at = moment(ctx)
    events = [
        ("contract.published", f"{proposal.repo}:{asset}:{version}", {
            "asset": asset, "version": version, "repo": proposal.repo, "pr_number": proposal.pr_number,
            "url": slack.pr_web_url(at.settings.github_api_url, proposal.repo, proposal.pr_number)})
        for asset, version in published
    ]
    try:
        if await at.store.write(lambda db: _subscriber_events(db, events, at.now)):
            outbox.ring()
    except Exception:  # noqa: BLE001
        log.exception("%s#%s: could not queue contract.published", proposal.repo, proposal.pr_number)


async def audit_run_reported(at: Moment, *, asset: str, run_id: str) -> None:
    """A WAP run was stored: alerts it set firing, or cleared, become ``audit.alert`` for subscribers
    and a notice in the owning team's channel. Never raises (the run is already recorded)."""
    try:
        await _audit_alerts(at, asset=asset, run_id=run_id)
    except Exception:  # noqa: BLE001
        log.exception("%s: could not queue audit alerts", asset)


async def _audit_alerts(at: Moment, *, asset: str, run_id: str) -> None:
    now = dt.datetime.fromtimestamp(at.now, dt.UTC)
    since = (now - dt.timedelta(days=30)).timestamp()
    runs = [run for _, run in await at.store.read(lambda db: reg_sql.audit_runs(db, asset, since=since))]
    before = {a.code: a.message for a in audit_rules.trends([r for r in runs if r.run_id != run_id], now).alerts}
    after = {a.code: a.message for a in audit_rules.trends(runs, now).alerts}
    fired = [{"code": c, "message": m, "state": "firing"} for c, m in after.items() if c not in before]
    cleared = [{"code": c, "message": m, "state": "cleared"} for c, m in before.items() if c not in after]
    if not fired and not cleared:
        return
    owners = await at.store.read(reg_sql.asset_owners)
    team = (owners.get(asset) or (None, None))[0]
    data = {"asset": asset, "team": team, "run_id": run_id, "alerts": fired + cleared}
    key = f"{asset}:{run_id}"

    def write(db: sqlite_utils.Database) -> int:
        added = _subscriber_events(db, [("audit.alert", key, data)], at.now)
        channel = sql.team_channels(db).get(team or "")
        if channel and (at.settings.slack_bot_token or slack.is_webhook(channel)):
            parts = [f"firing: {a['message']}" for a in fired] + [f"cleared: {a['code']}" for a in cleared]
            added += notice(db, channel, f"Audit alerts on {asset} after run {run_id}: " + "; ".join(parts),
                            f"audit:{key}", at.now)
        return added

    if await at.store.write(write):
        outbox.ring()


def notice(db: sqlite_utils.Database, channel: str, text: str, key: str, now: float) -> int:
    """Queue a one-off Slack message (escaped) to ``channel``."""
    body = {"op": "post", "channel": channel, **slack.notice(text)}
    return sql.enqueue(db, [sql.NewOutbound(f"slack:notice:{key}", "slack", "slack.notice", f"slack:notice:{key}", body)], now)


# --- channels -------------------------------------------------------------------------------------


async def channels_for(ctx: JobContext, gh: InstallationClient, proposal: Proposal, base_sha: str) -> dict[str, str]:
    """Each team's channel: ``teams.<t>.slack`` in the base branch's ``.tessera.yml`` (read from the
    caches the analysis just filled), else one set through the API. Channels seen in a repository's
    configuration are remembered, so later notices (audits, subscriptions) reach them too."""
    channels = await ctx.store.read(sql.team_channels)
    from_config: dict[str, str] = {}
    try:
        owner, name = proposal.owner_and_name
        entries = await load_tree(ctx.store, gh, repo_id=proposal.repo_id, owner=owner, repo=name, sha=base_sha)
        if CONFIG_PATH in entries:
            fetcher = BlobFetcher(store=ctx.store, github=gh, owner=owner, repo=name, loop=asyncio.get_running_loop())
            await fetcher.preload([entries[CONFIG_PATH].sha])
            text = (await fetcher.fetch(entries[CONFIG_PATH].sha)).decode("utf-8", errors="replace")
            config = await read_config(text, seconds=CONFIG_SECONDS)
            from_config = {slug: spec.slack for slug, spec in config.teams.items() if spec.slack}
    except Exception:  # noqa: BLE001 - the analysis already named any problem with the file
        log.warning("%s: could not read Slack channels from .tessera.yml", proposal.repo, exc_info=True)
    changed = {t: c for t, c in from_config.items() if channels.get(t) != c}
    if changed:
        now = time.time()
        await ctx.store.write(lambda db: [sql.set_team_channel(db, t, c, f"repo:{proposal.repo}", now)
                                          for t, c in changed.items()])
    return {**channels, **from_config}
