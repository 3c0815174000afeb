"""Which handlers run for which event: one ``gidgethub.routing.Router`` per concern, composed here.

A concern (the PR workflow, slash commands, registry sync...) lives in its own module with its own
``router = Router()`` and handlers ``async def handler(event: Event, ctx: JobContext) -> None``.
To plug one in, add one line to :func:`concern_routers` below. Handlers run from the durable queue
(never inside the webhook request) and may run again after a crash: make them idempotent
(see :mod:`app.queue`).
"""

from __future__ import annotations

import logging

from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.api.republish import router as api_republish_router
from app.notify.interactions import router as slack_actions_router
from app.queue import JobContext
from app.registry_sync import router as registry_sync_router
from app.workflow.pulls import router as workflow_pulls_router
from app.workflow.slash import router as workflow_commands_router

log = logging.getLogger(__name__)

ping_router = Router()


@ping_router.register("ping")
async def log_ping(event: Event, ctx: JobContext) -> None:
    """GitHub sends ``ping`` when the webhook is created: note which hook and App it came from."""
    hook = event.data.get("hook") or {}
    log.info(
        "ping from hook %s (app %s, events %s): %s",
        event.data.get("hook_id"),
        hook.get("app_id"),
        ",".join(hook.get("events") or []),
        event.data.get("zen", ""),
    )


def concern_routers() -> list[Router]:
    """Every concern's router, in one place. Add yours here."""
    return [
        ping_router,
        workflow_pulls_router,
        workflow_commands_router,
        registry_sync_router,
        api_republish_router,
        slack_actions_router,
        # e.g. workflow.router (pull_request, check_run), commands.router (issue_comment), ...
    ]


def build_router(*extra: Router) -> Router:
    """The one router the queue dispatches to: every concern's router, plus ``extra`` (tests)."""
    return Router(*concern_routers(), *extra)
