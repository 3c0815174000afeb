"""The comment's headline never contradicts its body, whatever the status and whoever is asked.

Every combination of who is reached (teams, people, a fallback for consumers with no owner,
consumers noted under ``on_unowned: warn``, nobody) and how they answered (not yet, acked,
blocked, acked earlier changes) is rendered, and the headline's claims are checked against the
sections below it.
"""

from __future__ import annotations

import itertools
import re

import pytest

from rules.model import MAINTAINERS, Analysis, Change, Impact, RequiredAck
from rules.owners import holder_text
from rules.report import AckState, to_markdown

DROP = Change("COLUMN_REMOVED", "breaking", "fct_revenue", "plan_code", "models/fct_revenue.sql", 3, "removed")
RETYPE = Change("FILTER_CHANGED", "review", "fct_orders", None, "models/fct_orders.sql", 4, "filter changed")

GROWTH = RequiredAck("growth", "acme/growth", ("COLUMN_REMOVED on fct_revenue.plan_code: read by exposure board",), "f1")
DANA = RequiredAck(
    "user:dana@acme.test", None, ("COLUMN_REMOVED on fct_revenue.plan_code: read by exposure churn",), "f2",
    kind="user", user="dana@acme.test", login="dana",
)
HELD = RequiredAck(
    MAINTAINERS, None, ("COLUMN_REMOVED on fct_revenue.plan_code: read by exposure orphan",), "f3", fallback=True
)
HELD_TEAM = RequiredAck(
    "platform", "acme/platform", ("COLUMN_REMOVED on fct_revenue.plan_code: read by exposure orphan",), "f4",
    fallback=True,
)


def _impact(consumer: str, team: str | None, rule: str = "COLUMN_REMOVED", asset: str = "fct_revenue") -> Impact:
    return Impact(asset, consumer, "exposure", team, ("plan_code",), (rule,), (asset, consumer))


SCENARIOS: dict[str, tuple[tuple[Change, ...], tuple[Impact, ...], tuple[RequiredAck, ...]]] = {
    "nothing reached": ((DROP,), (), ()),
    "review only, consumers reached": ((RETYPE,), (_impact("ops", "growth", "FILTER_CHANGED", "fct_orders"),), ()),
    "review and breaking, only review reaches": (
        (DROP, RETYPE), (_impact("ops", "growth", "FILTER_CHANGED", "fct_orders"),), ()
    ),
    "a team": ((DROP,), (_impact("board", "growth"),), (GROWTH,)),
    "a person": ((DROP,), (_impact("churn", "user:dana@acme.test"),), (DANA,)),
    "a fallback for maintainers": ((DROP,), (_impact("orphan", None),), (HELD,)),
    "a fallback team": ((DROP,), (_impact("orphan", None),), (HELD_TEAM,)),
    "a person not found, held": ((DROP,), (_impact("churn", "user:jo"),), (HELD,)),
    "team, person and fallback": (
        (DROP,), (_impact("board", "growth"), _impact("churn", "user:dana@acme.test"), _impact("orphan", None)),
        (GROWTH, DANA, HELD),
    ),
    "unowned with warn": ((DROP,), (_impact("orphan", None),), ()),
    "unowned with warn beside a team": ((DROP,), (_impact("board", "growth"), _impact("orphan", None)), (GROWTH,)),
    "no changes": ((), (), ()),
}

ANSWERS = {
    "nobody answered": lambda req: {},
    "all acked": lambda req: {r.team: AckState("ack", user="x") for r in req},
    "first blocked": lambda req: {req[0].team: AckState("block", user="x", reason="no")} if req else {},
    "first acked earlier changes": lambda req: {req[0].team: AckState("ack", user="x", stale=True)} if req else {},
    "first acked": lambda req: {req[0].team: AckState("ack", user="x")} if req else {},
}


def _rows(body: str) -> dict[str, str]:
    """The teams table: who → status cell."""
    rows: dict[str, str] = {}
    section = body.split("### What each team must do", 1)
    if len(section) == 1:
        return rows
    for line in section[1].split("\n\n", 2)[1].splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].replace(" (holding for consumers with no owner)", "")] = cells[2]
    return rows


def _summary_counts(body: str) -> tuple[int, int, int]:
    """(consumers reached, by a breaking change, with no owner) from the summary line."""
    line = next(x for x in body.splitlines() if x.startswith("Changes:"))
    reached = re.search(r"(\d+) consumers? reached", line)
    hit = re.search(r"\((\d+) by a breaking change", line)
    ownerless = re.search(r"(\d+) with no owner", line)
    return (
        int(reached.group(1)) if reached else 0,
        int(hit.group(1)) if hit else 0,
        int(ownerless.group(1)) if ownerless else 0,
    )


@pytest.mark.parametrize(("scenario", "answers"), list(itertools.product(SCENARIOS, ANSWERS)))
def test_the_headline_says_what_the_body_shows(scenario: str, answers: str) -> None:
    changes, impacts, required = SCENARIOS[scenario]
    analysis = Analysis("b" * 40, "h" * 40, "needs_ack" if required else "clear", changes, impacts, required)
    body = to_markdown(analysis, acks=ANSWERS[answers](required))
    headline = body.splitlines()[1]
    rows = _rows(body)
    reached, hit, ownerless = _summary_counts(body)

    # Everyone asked has a row, and nobody else does.
    assert set(rows) == {holder_text(r) for r in required}
    waiting = {who for who, status in rows.items() if not status.startswith(("✅", "⛔"))}
    blocked = {who for who, status in rows.items() if status.startswith("⛔")}
    if blocked:
        assert headline.startswith("## ⛔") and all(who in headline for who in blocked)
    elif waiting:
        assert headline.startswith("## ⏳") and all(who in headline for who in waiting)
        assert not any(who in headline for who in set(rows) - waiting)
    elif rows:
        assert headline.startswith("## ✅")
    else:
        assert not headline.startswith(("## ⏳", "## ✅", "## ⛔"))

    # Consumers with no owner: counted alike, and the holder named in both places.
    said = re.search(r"(\d+) consumers? (?:has|have) no owner: held for (.+)$", headline)
    assert (int(said.group(1)) if said else 0) == ownerless
    if said:
        held = [holder_text(r) for r in required if r.fallback]
        assert all(h in said.group(2) for h in held)
        assert held or "nobody" in said.group(2)
        assert "_no owner_" in body or "(not found on GitHub)" in body

    # A green headline never sits above a breaking change that reaches somebody.
    if headline.startswith("## 🟢"):
        assert hit == 0 and not rows
    if "no other team reads" in headline:
        assert hit == 0
    if hit:
        assert not headline.startswith("## 🟢")
    assert reached >= hit >= ownerless
