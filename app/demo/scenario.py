"""What the demo holds: Acme's dbt project, the people and teams around it, and the pull requests
that show each state a change can be in.

Plain data, so that a reader sees the whole story in one place and the tests can name what they
expect: ``tessera demo`` (:mod:`app.demo.run`) plays it into the fake GitHub and the App.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).parent / "project"
ORG = "acme"
REPO = "acme/analytics"
INSTALLATION_ID = 1
DEMO_USER = "demo"
"""Who the fake GitHub's sign-in says the browser is: a Growth member and an owner of ``acme``."""


@dataclass(frozen=True)
class Team:
    slug: str
    name: str
    github_team: str
    members: tuple[str, ...]


TEAMS: tuple[Team, ...] = (
    Team("platform", "Data Platform", "acme/data-platform", ("pat",)),
    Team("finance", "Finance Data", "acme/finance-data", ("priya", "fiona")),
    Team("growth", "Growth Analytics", "acme/growth", (DEMO_USER, "gus")),
    Team("marketing", "Marketing Analytics", "acme/marketing", ("maya",)),
)


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` in one file of the project (``old`` must be there)."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Story:
    """One pull request: who opens it, what it changes, and what people answer on it."""

    key: str
    state: str
    """What the demo shows with it: ``waiting``, ``acked``, ``blocked``, ``migrating``, ``clear``, ``merged``."""
    title: str
    author: str
    edits: tuple[Edit, ...]
    replies: tuple[tuple[str, str], ...] = ()
    """(login, comment) in order, each delivered as an ``issue_comment``."""
    body: str = ""


def migrating_deadline(today: dt.date) -> str:
    """Three weeks from today: a deadline that is still ahead whenever the demo runs."""
    return (today + dt.timedelta(days=21)).isoformat()


def stories(today: dt.date) -> tuple[Story, ...]:
    """The open pull requests, opened in this order after the :data:`MERGED` ones."""
    return (
        Story(
            "drop-plan-code", "waiting", "Drop plan_code from fct_revenue", "priya",
            (Edit("models/marts/fct_revenue.sql", "    s.plan_code,\n", ""),),
            body="Plans move to fct_subscriptions; revenue no longer carries them.",
        ),
        Story(
            "drop-country", "acked", "Stop passing country through stg_customers", "pat",
            (Edit("models/staging/stg_customers.sql", "    country,\n", ""),),
            replies=(("maya", "/tessera ack"),),
            body="Country comes from the billing address from now on.",
        ),
        Story(
            "amount-in-cents", "blocked", "Store order amounts as integer cents", "pat",
            (Edit("models/staging/stg_orders.sql", "    amount,\n", "    cast(amount * 100 as bigint) as amount,\n"),),
            replies=(("fiona", "/tessera block finance The board pack sums amount in dollars; this would"
                      " multiply Q4 revenue by 100."),),
        ),
        Story(
            "drop-trial-days", "migrating", "Remove trial_days from fct_subscriptions", "priya",
            (Edit("models/marts/fct_subscriptions.sql", "    trial_days,\n", ""),),
            replies=(("maya", f"/tessera migrating by {migrating_deadline(today)}"),),
        ),
        Story(
            "add-balance", "clear", "Add the open balance to fct_orders", "priya",
            (Edit("models/marts/fct_orders.sql", "    coalesce(p.paid_amount, 0) as paid_amount,\n",
                  "    coalesce(p.paid_amount, 0) as paid_amount,\n"
                  "    o.amount - coalesce(p.paid_amount, 0) as open_balance,\n"),),
        ),
        Story(
            "rename-mrr", "waiting", "Rename mrr to mrr_usd in mrr_monthly", DEMO_USER,
            (Edit("models/marts/mrr_monthly.sql", "    sum(mrr) as mrr,\n", "    sum(mrr) as mrr_usd,\n"),),
            body="Every money column says its currency.",
        ),
    )


MERGED: tuple[Story, ...] = (
    Story("describe-orders", "merged", "Describe fct_orders' columns", "priya",
          (Edit("models/marts/marts.yml", "    description: Orders with what was paid for them.\n",
                "    description: Orders with what was paid for them.\n    columns:\n"
                "      - {name: amount, description: What the customer was charged.}\n"
                "      - {name: paid_amount, description: What the payments added up to.}\n"),)),
    Story("signup-month", "merged", "Add the signup month to dim_customers", "maya",
          (Edit("models/marts/dim_customers.sql", "    c.created_at,\n    min(",
                "    c.created_at,\n    date_trunc('month', c.created_at) as signup_month,\n    min("),)),
    Story("first-paid", "merged", "Keep the first payment time in int_order_payments", "pat",
          (Edit("models/intermediate/int_order_payments.sql", "    max(paid_at) as last_paid_at\n",
                "    min(paid_at) as first_paid_at,\n    max(paid_at) as last_paid_at\n"),)),
    Story("reformat-payments", "merged", "Lower-case keywords in stg_payments", "pat",
          (Edit("models/staging/stg_payments.sql", "    paid_at\nfrom", "    paid_at\n\nfrom"),)),
    Story("average-order", "merged", "Add the average order value to product_sales", "gus",
          (Edit("models/marts/product_sales.sql", "    sum(o.paid_amount) as revenue\n",
                "    sum(o.paid_amount) as revenue,\n    avg(o.paid_amount) as average_order_value\n"),)),
    Story("describe-staging", "merged", "Describe the staging models' sources", "pat",
          (Edit("models/staging/sources.yml", "every 15 minutes.", "every 15 minutes from the shop's Postgres."),)),
)
"""Pull requests that passed untouched and were merged before the open ones (the friction budget's
good side: most changes break nobody and never wait)."""


def numbers(today: dt.date) -> dict[str, int]:
    """Each story's pull request number: the merged ones first, then the open ones, in order."""
    return {story.key: n for n, story in enumerate((*MERGED, *stories(today)), start=1)}


@dataclass(frozen=True)
class Registration:
    team: str
    asset: str
    columns: tuple[str, ...]
    note: str


REGISTRATIONS: tuple[Registration, ...] = (
    Registration("finance", "mrr_monthly", ("mrr", "plan_code"), "Monthly board pack, MRR slide"),
    Registration("growth", "fct_orders", ("status", "amount"), "Weekly growth e-mail"),
    Registration("marketing", "dim_customers", ("email", "country"), "CRM sync to the mailing tool"),
)


@dataclass(frozen=True)
class Guarantee:
    id: str
    failing_days: tuple[int, ...] = ()
    """Days ago (0 = today) whose run of this guarantee failed."""
    failed_rows: int = 0


@dataclass(frozen=True)
class AuditedAsset:
    """A daily write-audit-publish run over the last 30 days, with these guarantees."""

    asset: str
    guarantees: tuple[Guarantee, ...]
    extra_runs_today: int = 0
    """More runs in the last hours (a retried pipeline), failing like today's."""


AUDITS: tuple[AuditedAsset, ...] = (
    AuditedAsset("fct_revenue", (Guarantee("revenue_not_negative", (0, 9, 17), 7), Guarantee("order_id_unique")),
                 extra_runs_today=1),
    AuditedAsset("fct_orders", (Guarantee("amount_not_null", (12,), 3), Guarantee("status_in_set"))),
    AuditedAsset("dim_customers", (Guarantee("email_unique", (3, 4), 2),)),
)
AUDIT_DAYS = 30


@dataclass(frozen=True)
class QueryLogLine:
    """A query the warehouse saw: one line of the ``jsonl`` log ``tessera discover`` reads."""

    query: str
    user: str
    role: str
    hours_ago: float
    calls: int = 1


QUERY_LOG: tuple[QueryLogLine, ...] = (
    QueryLogLine("select plan_code, sum(revenue) from fct_revenue group by plan_code", "gus", "GROWTH_ANALYST", 5, 14),
    QueryLogLine("select month, plan_code, mrr from mrr_monthly", "gus", "GROWTH_ANALYST", 30, 4),
    QueryLogLine("select order_id, amount, paid_amount from fct_orders where status = 'completed'",
                 "fiona", "FINANCE_REPORTING", 2, 31),
    QueryLogLine("select customer_id, ltv from customer_ltv", "looker_marketing", "", 8, 52),
    QueryLogLine("select email, country from dim_customers where order_count = 0", "sam", "ADHOC_ANALYST", 20, 3),
)


READER_MAPPINGS: tuple[tuple[str, str, str], ...] = (
    ("role", "GROWTH_ANALYST", "growth"),
    ("role", "FINANCE_REPORTING", "finance"),
    ("user", "looker_marketing", "marketing"),
)
"""(kind, reader, team) claimed once for all repositories; ``ADHOC_ANALYST`` stays unmapped."""


def project_files() -> dict[str, str]:
    """Acme's repository on its default branch: the dbt project and its ``.tessera.yml``."""
    files = {str(p.relative_to(PROJECT)): p.read_text() for p in sorted(PROJECT.rglob("*")) if p.is_file()}
    files[".tessera.yml"] = files.pop("tessera.yml")  # kept without the dot so packaging keeps it
    return files


def apply(files: dict[str, str], edits: tuple[Edit, ...]) -> dict[str, str]:
    """The changed files of a story (only those)."""
    changed: dict[str, str] = {}
    for edit in edits:
        text = changed.get(edit.path, files[edit.path])
        if edit.old not in text:
            raise ValueError(f"{edit.path} no longer holds {edit.old!r}: the demo's story is out of date")
        changed[edit.path] = text.replace(edit.old, edit.new, 1)
    return changed
