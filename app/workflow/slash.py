"""Carrying out `/tessera …` commands from pull-request comments.

Only ``issue_comment`` ``created`` on a pull request counts: an edited comment that gains a command
is ignored (an edit must not rewrite history), and so is anything a bot writes. A comment with no
command costs nothing: no API call at all. Only active members of a team's GitHub team may speak
for it (asked of ``GET /orgs/{org}/teams/{team}/memberships/{user}``; an active membership is
remembered for a minute); a person asked by name answers only for themself (the login the App
found for them, stored on the analysis); for a consumer with no owner held for the maintainers,
anyone with maintain or admin permission may answer. The pull request's author may not
acknowledge for anyone; ``override`` needs admin permission on the repository. Every command gets a reaction: ``+1`` when carried out, ``confused`` with a one-line
reply saying why when refused. Then the comment and the check are brought up to date.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import cachetools
import gidgethub
import sqlite_utils
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.github import InstallationClient
from app.queue import JobContext
from app.store import proposals as sql
from app.store.proposals import Proposal
from app.workflow import acks as ack_rules
from app.workflow import checkrun
from app.workflow.acks import OVERRIDE_TEAM, AckRecord
from app.workflow.checkout import installation_client, pull_ref
from app.workflow.commands import Command, help_text, parse_commands, select_teams, split_block
from app.workflow.payload import PayloadReader
from app.workflow.publishing import details_url, publish_outcome
from app.workflow.pulls import analyse_pull
from app.workflow.serialize import analysis_from_json
from rules.markdown import clip, code, text
from rules.model import MAINTAINERS, Analysis, RequiredAck, person_identity
from rules.owners import holder_text

log = logging.getLogger(__name__)

router = Router()

MAX_NAMED_IN_REPLY = 5
"""Unknown team names echoed in a refusal: enough to spot a typo, never a reply past GitHub's limit."""
MAX_COMMANDS = 20
"""Commands carried out from one comment: a comment of thousands of command lines must not keep
the worker writing acks and replies for minutes."""
MEMBERSHIP_TTL = 60.0
_memberships: cachetools.TTLCache[tuple[str, ...], bool] = cachetools.TTLCache(maxsize=4096, ttl=MEMBERSHIP_TTL)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    reply: str | None = None
    changed: bool = False
    """The responses changed: comment and check need updating."""
    recheck: bool = False


@dataclass
class Conversation:
    """One comment being answered: who, where, and the pull request's state."""

    ctx: JobContext
    github: InstallationClient
    proposal: Proposal
    analysis: Analysis
    user: str
    comment_id: int | None
    """The comment holding the command; None for a response given elsewhere (Tessera's proposal page,
    a Slack button)."""
    records: dict[str, AckRecord]
    source: str | None = None
    """Where the answer was given when not in a comment (``page``: Tessera's proposal page); kept in the audit log."""

    @property
    def owner(self) -> str:
        return self.proposal.owner_and_name[0]

    @property
    def repo(self) -> str:
        return self.proposal.owner_and_name[1]


@router.register("issue_comment", action="created")
async def on_comment(event: Event, ctx: JobContext) -> None:
    data = event.data
    reader = PayloadReader(data, event.event)
    issue = reader.mapping("issue")
    comment = reader.mapping("comment")
    if "pull_request" not in issue:
        return
    author = comment.get("user") if isinstance(comment.get("user"), Mapping) else {}
    sender = data.get("sender") if isinstance(data.get("sender"), Mapping) else {}
    if author.get("type") == "Bot" or sender.get("type") == "Bot":
        return
    body = comment.get("body")
    # Off the event loop: a hostile 65,536-character comment costs the parser up to a second.
    commands = await asyncio.to_thread(parse_commands, body if isinstance(body, str) else None)
    if not commands:
        return
    repository = reader.mapping("repository")
    repo_id = reader.integer("repository.id")
    comment_id = reader.integer("comment.id")
    number = reader.integer("issue.number")
    owner, _, name = reader.text("repository.full_name").partition("/")
    installation_id = reader.installation_id()
    if await ctx.store.read(lambda db: sql.comment_handled(db, comment_id)):
        return  # a re-delivery of a comment already answered
    gh = await installation_client(ctx, installation_id)

    proposal = await ctx.store.read(lambda db: sql.get_proposal(db, repo_id, number))
    if proposal is None or not proposal.analysis:
        # Never analysed (the App was installed after the pull request opened): do it now.
        pull = await gh.get_pull(owner, name, number)
        await analyse_pull(ctx, pull_ref(pull, repository, installation_id), force=True, github=gh)
        proposal = await ctx.store.read(lambda db: sql.get_proposal(db, repo_id, number))
    if proposal is None or not proposal.analysis:
        await _answer(ctx, gh, owner, name, number, comment_id, [Outcome(False, "Tessera could not analyse this pull request yet; try `/tessera recheck`.")])
        await ctx.fenced_write(lambda db: sql.claim_comment(db, comment_id, None))
        return

    if proposal.status != "open" and any(c.verb not in ("help", "status") for c in commands):
        reply = f"@{author.get('login')} this pull request is {proposal.status}: there is nothing left to decide."
        await _answer(ctx, gh, owner, name, number, comment_id, [Outcome(False, reply)])
        await ctx.fenced_write(lambda db: sql.claim_comment(db, comment_id, proposal.id))
        return

    records = await ctx.store.read(lambda db: sql.list_acks(db, proposal.id))
    talk = Conversation(
        ctx=ctx,
        github=gh,
        proposal=proposal,
        analysis=analysis_from_json(proposal.analysis),
        user=str(author.get("login") or ""),
        comment_id=comment_id,
        records=records,
    )
    outcomes = [await carry_out(talk, command) for command in commands[:MAX_COMMANDS]]
    if len(commands) > MAX_COMMANDS:
        skipped = len(commands) - MAX_COMMANDS
        outcomes.insert(  # first, so clipping a long answer cannot cut it off
            0,
            Outcome(False, f"@{talk.user} only the first {MAX_COMMANDS} commands of a comment are read; {skipped} more were not.")
        )

    if any(o.recheck for o in outcomes):
        pull = await gh.get_pull(owner, name, number)
        await analyse_pull(ctx, pull_ref(pull, repository, installation_id), force=True, github=gh)
    elif any(o.changed for o in outcomes) and proposal.check_run_id is not None:
        fresh = await ctx.store.read(lambda db: sql.get_proposal_by_id(db, proposal.id))
        await publish_outcome(ctx, gh, fresh or proposal, talk.analysis, check_run_id=proposal.check_run_id)
    await _answer(ctx, gh, owner, name, number, comment_id, outcomes)
    await ctx.fenced_write(lambda db: sql.claim_comment(db, comment_id, proposal.id))


# --- the same commands, given on the proposal page ------------------------------------------------


async def _page_conversation(ctx: JobContext, gh: InstallationClient, proposal: Proposal, user: str) -> Conversation:
    records = await ctx.store.read(lambda db: sql.list_acks(db, proposal.id))
    analysis = analysis_from_json(proposal.analysis or "{}")
    return Conversation(ctx, gh, proposal, analysis, user, None, records, source="page")


async def answerable(ctx: JobContext, gh: InstallationClient, proposal: Proposal, user: str) -> list[str]:
    """The teams and people asked on this pull request that ``user`` may answer for, by the rules
    of the comments (so the page offers buttons only to those a command would accept)."""
    if not proposal.analysis or proposal.status != "open":
        return []
    talk = await _page_conversation(ctx, gh, proposal, user)
    if user.lower() == (proposal.author or "").lower():
        return []
    return [key for key, need in _asked(talk).items() if await _may_speak(talk, need)]


async def answer_from_page(ctx: JobContext, gh: InstallationClient, proposal: Proposal, user: str, line: str) -> Outcome:
    """Carry out one ``/tessera …`` line given by ``user`` on the proposal page: the same checks,
    the same records and audit log as a comment; then the comment and check are brought up to date.
    The line is one line (a newline in a typed reason cannot start a second command)."""
    commands = parse_commands(" ".join(line.split()))
    if len(commands) != 1 or commands[0].verb not in ("ack", "migrating", "block", "unblock", "unack"):
        return Outcome(False, "Only ack, migrating, block, unblock and unack can be given on this page.")
    if proposal.status != "open":
        return Outcome(False, f"This pull request is {proposal.status}: there is nothing left to decide.")
    if not proposal.analysis:
        return Outcome(False, "Tessera has not analysed this pull request yet.")
    talk = await _page_conversation(ctx, gh, proposal, user)
    outcome = await carry_out(talk, commands[0])
    if outcome.changed and proposal.check_run_id is not None:
        fresh = await ctx.store.read(lambda db: sql.get_proposal_by_id(db, proposal.id))
        await publish_outcome(ctx, gh, fresh or proposal, talk.analysis, check_run_id=proposal.check_run_id)
    return outcome


async def _answer(
    ctx: JobContext, gh: InstallationClient, owner: str, repo: str, number: int, comment_id: int, outcomes: list[Outcome]
) -> None:
    await ctx.fence()  # a stalled replica whose command another replica took over answers nothing
    accepted = all(o.accepted for o in outcomes)
    await gh.create_comment_reaction(owner, repo, comment_id, "+1" if accepted else "confused")
    replies = [_clip_reply(o.reply) for o in outcomes if o.reply]
    if replies:
        await gh.create_issue_comment(owner, repo, number, clip("\n\n".join(replies), MAX_REPLY_TOTAL))


MAX_REPLY = 10_000
"""A reply is a line or a short list: one that echoes a giant word is cut here, so GitHub (65,536
characters) never refuses the answer and the command is still answered."""
MAX_REPLY_TOTAL = 60_000


def _clip_reply(reply: str) -> str:
    return clip(reply, MAX_REPLY)


# --- the commands ---------------------------------------------------------------------------------


async def carry_out(talk: Conversation, command: Command) -> Outcome:
    if command.problem:
        if command.verb in ("override", "migrating"):
            return Outcome(False, f"@{talk.user} {command.problem}")
        return Outcome(False, help_text(f"@{talk.user} {command.problem}"))
    handler = _HANDLERS[command.verb]
    return await handler(talk, command)


async def _help(talk: Conversation, command: Command) -> Outcome:
    return Outcome(True, help_text())


async def _status(talk: Conversation, command: Command) -> Outcome:
    verdict = ack_rules.verdict(talk.analysis.required_acks, talk.records)
    url = details_url(talk.ctx, talk.proposal.check_run_id) if talk.proposal.check_run_id else None
    summary = checkrun.summary(talk.analysis, verdict, details_url=url)
    return Outcome(True, f"**{text(verdict.title, line_start=False)}**\n\n{summary}")


async def _recheck(talk: Conversation, command: Command) -> Outcome:
    return Outcome(True, recheck=True)


def _github_team(talk: Conversation, team: str, github_team: str | None) -> str:
    """A team's GitHub team; a bare slug is taken as a team of the repository's organisation."""
    return github_team or f"{talk.owner}/{team}"


async def _is_member(talk: Conversation, github_team: str) -> bool:
    return await is_active_member(talk.github, github_team, talk.user)


async def is_active_member(github: InstallationClient, github_team: str, user: str) -> bool:
    """True when ``user`` is an active member of ``org/team`` (remembered for a minute when so)."""
    org, _, slug = github_team.lstrip("@").partition("/")
    key = (str(getattr(github, "base_url", "")), org.lower(), slug.lower(), user.lower())
    if key not in _memberships:
        try:
            state = await github.team_membership_state(org, slug, user)
        except gidgethub.BadRequest as exc:
            if exc.status_code != 403:
                raise
            state = None  # a team of an organisation the App cannot see: nobody is a member
        if state != "active":
            return False  # not remembered: someone just added to the team can retry at once
        _memberships[key] = True
    return _memberships[key]


MAINTAINER_ROLES = ("admin", "maintain")


async def _may_speak(talk: Conversation, need: RequiredAck) -> bool:
    """A person answers for themself; the maintainers (not the author) for what nobody owns; a
    team's active members for their team."""
    if need.kind == "user":
        return bool(need.login) and talk.user.lower() == (need.login or "").lower()
    if need.maintainers:
        if talk.user.lower() == (talk.proposal.author or "").lower():
            return False
        return await talk.github.collaborator_role(talk.owner, talk.repo, talk.user) in MAINTAINER_ROLES
    return await _is_member(talk, _github_team(talk, need.team, need.github_team))


def _named(talk: Conversation, need: RequiredAck) -> str:
    """How a reply names one asked (a bare team slug as a team of the repository's organisation)."""
    if need.kind == "team" and not need.maintainers:
        need = replace(need, github_team=_github_team(talk, need.team, need.github_team))
    return holder_text(need)


def _refusal(talk: Conversation, need: RequiredAck) -> str:
    if need.kind == "user":
        return f"@{talk.user} only {_named(talk, need)} can answer for themself."
    if need.maintainers:
        return (
            f"@{talk.user} only the repository's maintainers and admins (not the author) can answer for"
            " consumers with no owner."
        )
    return f"@{talk.user} only active members of {_named(talk, need)} can speak for it."


async def _speaking_for(
    talk: Conversation, command: Command, asked: Mapping[str, RequiredAck], named: list[str], unknown: list[str]
) -> tuple[list[str], str | None]:
    """The teams and people this user may speak for in this command, or a refusal."""
    if not asked:
        return [], None
    listing = ", ".join(_named(talk, need) for need in asked.values())
    if unknown:
        shown = [code(w, limit=100) for w in unknown[:MAX_NAMED_IN_REPLY]]
        more = len(unknown) - len(shown)
        words = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
        return [], f"@{talk.user} {words} is not a team asked to respond on this pull request ({listing})."
    if named:
        for key in named:
            if not await _may_speak(talk, asked[key]):
                return [], _refusal(talk, asked[key])
        return named, None
    mine = [key for key, need in asked.items() if await _may_speak(talk, need)]
    if not mine:
        return [], f"@{talk.user} you are not among those asked to respond here, nor an active member of their teams ({listing})."
    return mine, None


def _asked(talk: Conversation) -> dict[str, RequiredAck]:
    return {r.team: r for r in talk.analysis.required_acks}


def _aliases(talk: Conversation, asked: Mapping[str, RequiredAck]) -> dict[str, str | None]:
    """What a commenter may write to name each one asked: a team's GitHub team, a person's login."""
    return {
        key: need.login if need.kind == "user" else None if need.maintainers else _github_team(talk, key, need.github_team)
        for key, need in asked.items()
    }


def _record_team(talk: Conversation, need: RequiredAck) -> str | None:
    """The GitHub team kept with a response (none for a person or the maintainers)."""
    if need.kind == "user" or need.maintainers:
        return None
    return _github_team(talk, need.team, need.github_team)


async def _ack(talk: Conversation, command: Command) -> Outcome:
    teams = _asked(talk)
    if not teams:
        return Outcome(False, f"@{talk.user} nothing on this pull request needs an acknowledgement.")
    if talk.user.lower() == (talk.proposal.author or "").lower():
        return Outcome(
            False,
            f"@{talk.user} you opened this pull request: the teams it affects acknowledge it, not its author.",
        )
    today = dt.datetime.fromtimestamp(talk.ctx.clock.now(), dt.UTC).date()
    if command.deadline is not None and command.deadline < today:
        return Outcome(False, f"@{talk.user} {command.deadline.isoformat()} is in the past: give the date you will have migrated by.")
    named, unknown = select_teams(command.words, _aliases(talk, teams))
    chosen, refusal = await _speaking_for(talk, command, teams, named, unknown)
    if refusal:
        return Outcome(False, refusal)
    for team in chosen:
        record = AckRecord(
            team=team,
            response=command.verb,
            user=talk.user,
            fingerprint=teams[team].fingerprint,
            deadline=command.deadline,
            github_team=_record_team(talk, teams[team]),
        )
        await _save(talk, record, detail={"deadline": command.deadline})
    return Outcome(True, changed=True)


async def _block(talk: Conversation, command: Command) -> Outcome:
    teams = _asked(talk)
    if not teams:
        return Outcome(False, f"@{talk.user} no team is asked to respond on this pull request, so none can block it.")
    named, reason = split_block(command, _aliases(talk, teams))
    if not reason:
        return Outcome(False, f"@{talk.user} a block needs a reason: `/tessera block [team] <reason>`.")
    chosen, refusal = await _speaking_for(talk, command, teams, named, [])
    if refusal:
        return Outcome(False, refusal)
    for team in chosen:
        record = AckRecord(
            team=team, response="block", user=talk.user, reason=reason, github_team=_record_team(talk, teams[team])
        )
        await _save(talk, record, detail={"reason": reason})
    return Outcome(True, changed=True)


async def _withdraw(talk: Conversation, command: Command, responses: tuple[str, ...], what: str) -> Outcome:
    asked = _asked(talk)
    teams = {
        team: asked.get(team) or _answered_by(team, record)
        for team, record in talk.records.items()
        if record.response in responses and team != OVERRIDE_TEAM
    }
    if not teams:
        return Outcome(False, f"@{talk.user} there is no {what} to withdraw on this pull request.")
    named, unknown = select_teams(command.words, _aliases(talk, teams))
    chosen, refusal = await _speaking_for(talk, command, teams, named, unknown)
    if refusal:
        return Outcome(False, refusal)
    for team in chosen:
        await talk.ctx.fenced_write(lambda db, team=team: _delete(db, talk, team, command.verb))
        talk.records.pop(team, None)
    return Outcome(True, changed=True)


def _answered_by(key: str, record: AckRecord) -> RequiredAck:
    """Who a stored response spoke for, when the current analysis no longer asks them."""
    person = person_identity(key)
    if person is not None:
        return RequiredAck(key, None, kind="user", user=person, login=record.user)
    if key == MAINTAINERS and record.github_team is None:
        return RequiredAck(MAINTAINERS, None, fallback=True)
    return RequiredAck(key, record.github_team)


def _delete(db: sqlite_utils.Database, talk: Conversation, team: str, action: str) -> None:
    sql.delete_ack(db, talk.proposal.id, team)
    sql.audit(
        db, actor=talk.user, action=action, repo=talk.proposal.repo, pr_number=talk.proposal.pr_number, team=team
    )


async def _unblock(talk: Conversation, command: Command) -> Outcome:
    return await _withdraw(talk, command, ("block",), "block")


async def _unack(talk: Conversation, command: Command) -> Outcome:
    return await _withdraw(talk, command, ("ack", "migrating"), "acknowledgement")


async def _override(talk: Conversation, command: Command) -> Outcome:
    permission = await talk.github.collaborator_permission(talk.owner, talk.repo, talk.user)
    if permission != "admin":
        return Outcome(
            False, f"@{talk.user} only repository admins can override (your permission here is {code(str(permission))})."
        )
    record = AckRecord(
        team=OVERRIDE_TEAM,
        response="override",
        user=talk.user,
        fingerprint=ack_rules.overall_fingerprint(talk.analysis.required_acks),
        reason=command.text,
    )
    await _save(talk, record, detail={"reason": command.text, "head_sha": talk.analysis.head})
    return Outcome(True, changed=True)


async def _save(talk: Conversation, record: AckRecord, *, detail: Mapping[str, Any]) -> None:
    def write(db: sqlite_utils.Database) -> None:
        sql.put_ack(db, talk.proposal.id, record, comment_id=talk.comment_id)
        sql.audit(
            db,
            actor=talk.user,
            action=record.response,
            repo=talk.proposal.repo,
            pr_number=talk.proposal.pr_number,
            team=record.team,
            detail={
                **detail, "fingerprint": record.fingerprint, "comment_id": talk.comment_id,
                **({"source": talk.source} if talk.source else {}),
            },
        )

    await talk.ctx.fenced_write(write)  # with the audit entry: once, by the replica that holds the job
    talk.records[record.team] = record


_HANDLERS = {
    "ack": _ack,
    "migrating": _ack,
    "block": _block,
    "unblock": _unblock,
    "unack": _unack,
    "status": _status,
    "recheck": _recheck,
    "override": _override,
    "help": _help,
}
