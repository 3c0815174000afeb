"""``/checks/{id}``: the whole report of one check run, as a page a person reads.

The check run's ``details_url`` points here, and so do the comment's links when the comment had to
be shortened. Everything shown comes from a pull request (names, SQL, reasons typed in comments),
so the page is rendered with Jinja2's autoescaping and never trusts a byte of it.

Pull requests are usually in private repositories, so the id in the link carries a signature
(``<check run id>.<hmac>`` keyed by the webhook secret): knowing a check run's number is not
enough to read its report. Without a webhook secret (local use) the bare number is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import jinja2
from aiohttp import web

from app.store import proposals as sql
from app.workflow import acks as ack_rules
from app.workflow.checkrun import STATE_WORDS
from app.workflow.serialize import analysis_from_json

SEVERITY_ORDER = {"breaking": 0, "review": 1, "safe": 2, "info": 3}


def page_id(check_run_id: int, secret: str | None) -> str:
    """The id used in links: the check run's number, signed when a secret is configured."""
    if not secret:
        return str(check_run_id)
    return f"{check_run_id}.{_signature(check_run_id, secret)}"


def parse_page_id(text: str, secret: str | None) -> int | None:
    """The check run number a link names, or None when it is malformed or its signature is wrong."""
    number, _, signature = text.partition(".")
    if not (number.isascii() and number.isdigit()):  # "١٠٠٥" is digits to str.isdigit and int()
        return None
    check_run_id = int(number)
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text (a 500 for a guessed link).
    if secret and not hmac.compare_digest(signature.encode(), _signature(check_run_id, secret).encode()):
        return None
    return check_run_id


def web_url(api_url: str) -> str:
    """GitHub's web address for an API address: github.com, or a GitHub Enterprise Server host."""
    api_url = api_url.rstrip("/")
    if api_url == "https://api.github.com":
        return "https://github.com"
    return api_url.removesuffix("/api/v3")


def _signature(check_run_id: int, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"tessera-check:{check_run_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:20]


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Tessera · {{ repo }}#{{ number }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
pre{background:#f6f8fa;padding:.75rem;overflow:auto}code{background:#f6f8fa;padding:0 .2rem}
.success{color:#1a7f37}.failure{color:#cf222e}.action_required{color:#9a6700}
.breaking{color:#cf222e;font-weight:600}.review{color:#9a6700}.safe,.info{color:#57606a}
</style>
</head>
<body>
<h1>Tessera · <a href="{{ pr_url }}">{{ repo }}#{{ number }}</a></h1>
<p class="{{ conclusion }}"><strong>{{ conclusion_words }}</strong>: {{ title }}</p>
<p>{{ title_of_pr }}{% if author %} · opened by @{{ author }}{% endif %} · base <code>{{ base[:12] }}</code> → head <code>{{ head[:12] }}</code></p>
{% if override %}
<p><strong>Overridden by @{{ override.user }}</strong>: {{ override.reason }}</p>
{% endif %}
{% if statuses %}
<h2>Teams</h2>
<table><tr><th>team</th><th>state</th><th>why</th></tr>
{% for s in statuses %}
<tr><td>{{ s.github }}</td><td>{{ s.state }}</td><td>{% for r in s.reasons %}{{ r }}<br>{% endfor %}</td></tr>
{% endfor %}
</table>
<p>Members answer on the pull request with <code>/tessera ack</code>, <code>/tessera migrating by YYYY-MM-DD</code> or <code>/tessera block &lt;reason&gt;</code>.</p>
{% endif %}
<h2>Changes ({{ changes|length }})</h2>
{% if changes %}
<table><tr><th>severity</th><th>rule</th><th>asset</th><th>column</th><th>where</th><th>what</th></tr>
{% for c in changes %}
<tr><td class="{{ c.severity }}">{{ c.severity }}</td><td>{{ c.rule }}</td><td>{{ c.asset }}</td><td>{{ c.column or "" }}</td>
<td>{% if c.path %}{{ c.path }}{% if c.line %}:{{ c.line }}{% endif %}{% endif %}</td>
<td>{{ c.message }}{% if c.before or c.after %}<br><code>{{ c.before or "" }}</code> → <code>{{ c.after or "" }}</code>{% endif %}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No schema change found.</p>
{% endif %}
{% if impacts %}
<h2>Consumers reached ({{ impacts|length }})</h2>
<table><tr><th>changed asset</th><th>consumer</th><th>type</th><th>team</th><th>columns</th><th>through</th></tr>
{% for i in impacts %}
<tr><td>{{ i.asset }}</td><td>{{ i.consumer }}</td><td>{{ i.consumer_type }}</td><td>{{ i.team or "" }}</td><td>{{ i.columns|join(", ") }}</td><td>{{ i.path|join(" → ") }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if migrations %}
<h2>How to migrate</h2>
{% for m in migrations %}
<h3>{{ m.asset }}{% if m.column %}.{{ m.column }}{% endif %} ({{ m.rule }})</h3>
<p>{{ m.steps }}</p>
{% if m.sql %}<pre>{{ m.sql }}</pre>{% endif %}
{% endfor %}
{% endif %}
{% if errors %}
<h2>Could not analyse</h2>
<ul>{% for e in errors %}<li><code>{{ e.path }}</code>: {{ e.message }}</li>{% endfor %}</ul>
{% endif %}
{% if not has_analysis %}
<h2>Summary</h2>
<pre>{{ summary }}</pre>
{% endif %}
<details><summary>JSON</summary><pre>{{ json }}</pre></details>
</body>
</html>
"""
)

CONCLUSION_WORDS = {
    "success": "Passing",
    "action_required": "Waiting",
    "failure": "Blocked",
    None: "In progress",
}


async def check_page(request: web.Request) -> web.Response:
    from app.server import SETTINGS_KEY, STORE_KEY

    settings = request.app[SETTINGS_KEY]
    store = request.app[STORE_KEY]
    check_run_id = parse_page_id(request.match_info["id"], settings.webhook_secret)
    if check_run_id is None:
        raise web.HTTPNotFound(text="No such check.")
    record = await store.read(lambda db: sql.get_check(db, check_run_id))
    if record is None:
        raise web.HTTPNotFound(text="No such check.")
    proposal = await store.read(lambda db: sql.get_proposal_by_id(db, record.proposal_id))
    assert proposal is not None
    context: dict[str, Any] = {
        "repo": proposal.repo,
        "number": proposal.pr_number,
        "pr_url": f"{web_url(settings.github_api_url)}/{proposal.repo}/pull/{proposal.pr_number}",
        "title_of_pr": proposal.title or "",
        "author": proposal.author,
        "base": record.base_sha,
        "head": record.head_sha,
        "conclusion": record.conclusion or "",
        "conclusion_words": CONCLUSION_WORDS.get(record.conclusion, record.conclusion or ""),
        "title": record.title or "Analysing…",
        "summary": record.summary or "",
        "override": None,
        "statuses": [],
        "changes": [],
        "impacts": [],
        "migrations": [],
        "errors": [],
        "has_analysis": False,
        "json": "{}",
    }
    if record.analysis:
        analysis = analysis_from_json(record.analysis)
        records = await store.read(lambda db: sql.list_acks(db, proposal.id))
        verdict = ack_rules.verdict(analysis.required_acks, records)
        context.update(
            has_analysis=True,
            override=verdict.override,
            statuses=[
                {
                    "github": s.who or (f"@{s.github_team}" if s.github_team else s.team),
                    "state": STATE_WORDS.get(s.state, s.state)
                    + (f" by @{s.user}" if s.user and s.state in ("acked", "migrating", "blocked") else "")
                    + (f" (by {s.deadline})" if s.deadline else "")
                    + (f": {s.reason}" if s.reason and s.state == "blocked" else ""),
                    "reasons": s.reasons,
                }
                for s in verdict.statuses
            ],
            changes=sorted(analysis.changes, key=lambda c: (SEVERITY_ORDER.get(c.severity, 9), c.asset, c.column or "")),
            impacts=analysis.impacts,
            migrations=analysis.migrations,
            errors=analysis.errors,
            json=json.dumps(analysis.to_dict(), indent=2),
        )
    html = _PAGE.render(**context)
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'", "Cache-Control": "no-store"},
    )


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/checks/{id}", check_page)
