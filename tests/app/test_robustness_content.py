"""Hostile or broken repository content in a pull request: the analysis still ends.

Every scenario must end with the delivery ``done`` (or ``failed`` with a clear reason), the check
run ``completed`` with a conclusion and an output that names the problem (never left
``in_progress``), and the next pull request analysed as usual.
"""

from __future__ import annotations

from typing import Any

from tests.app.test_robustness_payloads import flow, settle, the_next_pull_request_is_still_analysed
from tests.app.workflow_support import PullRequestFlow, repo_files

__all__ = ["flow"]

FCT = "models/marts/fct_revenue.sql"


async def open_pr(flow: PullRequestFlow, changes: dict[str, Any]) -> tuple[Any, Any]:
    """Open a pull request with ``changes`` and return it with its settled delivery."""
    branch = f"b-{len(flow.repo.check_runs())}-{id(changes)}"
    flow.repo.commit(changes, parent="main", branch=branch)
    pull = flow.repo.open_pull_request(head=branch, author="priya")
    delivery = await settle(flow, "pull_request", flow.pull_payload(pull, "opened"))
    return pull, delivery


def completed_saying(flow: PullRequestFlow, pull: Any, *words: str) -> Any:
    check = flow.check(pull)
    assert check.status == "completed" and check.conclusion, f"check left {check.status}"
    text = check.output.get("title", "") + "\n" + check.output.get("summary", "") + "\n" + (check.output.get("text") or "")
    for word in words:
        assert word in text, f"{word!r} not in the check output:\n{text[:3000]}"
    return check


async def test_a_binary_file_with_a_sql_name_is_named_as_not_analysed(flow: PullRequestFlow) -> None:
    pull, delivery = await open_pr(flow, {FCT: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, FCT, "binary")


async def test_a_huge_sql_file_is_named_as_too_large_and_not_analysed(flow: PullRequestFlow, monkeypatch: Any) -> None:
    from app.workflow import github_source

    monkeypatch.setattr(github_source, "MAX_BLOB_BYTES", 200_000)  # the 5 MB limit, scaled down
    huge = "select\n" + "".join(f"    {i} as c{i},\n" for i in range(20_000)) + "    0 as last\n"
    assert len(huge) > 200_000
    pull, delivery = await open_pr(flow, {"models/marts/huge.sql": huge})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, "models/marts/huge.sql", "too large")
    cached = await flow.store.read(lambda db: db.execute("select count(*) from blob_cache where length(content) > 200000").fetchone()[0])
    assert cached == 0, "a blob too large to analyse was kept in the cache"
    await the_next_pull_request_is_still_analysed(flow)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
teams: *i
consumers: *i
ignore: *i
"""


async def test_a_yaml_bomb_in_the_configuration_is_refused_with_a_message(flow: PullRequestFlow) -> None:
    files = repo_files("revenue_dbt")
    files[".tessera.yml"] = BILLION_LAUGHS
    flow.use_repo("acme/bombed", files)
    text = files[FCT]
    pull, delivery = await open_pr(flow, {FCT: text.replace("    plan_code,\n", "")})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, ".tessera.yml")


async def test_a_configuration_that_is_not_a_mapping_is_named_in_the_check(flow: PullRequestFlow) -> None:
    files = repo_files("revenue_dbt")
    files[".tessera.yml"] = "- compatibility: backward\n- teams: {}\n"
    flow.use_repo("acme/listed", files)
    pull, delivery = await open_pr(flow, {FCT: files[FCT].replace("    plan_code,\n", "")})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, ".tessera.yml")


async def test_a_dbt_project_file_with_a_jinja_error_is_unparsed_on_its_line(flow: PullRequestFlow) -> None:
    """dbt would refuse the whole project, so the broken expression is an error on dbt_project.yml
    at its line (UNPARSED), not a setting compared as if it were one."""
    project = repo_files("revenue_dbt")["dbt_project.yml"]
    broken = project.replace("+materialized: table", "+materialized: \"{{ 'table' if target.name == 'prod' \"")
    pull, delivery = await open_pr(flow, {"dbt_project.yml": broken})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, "dbt_project.yml", "line 8", "Jinja syntax error")


async def test_a_binary_sql_file_claims_no_column_removed_from_its_declared_columns(flow: PullRequestFlow) -> None:
    pull, delivery = await open_pr(flow, {FCT: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4})
    assert delivery.status == "done", delivery.last_error
    check = completed_saying(flow, pull, FCT, "binary")
    text = check.output.get("summary", "") + (check.output.get("text") or "")
    assert "COLUMN_REMOVED" not in text and "was removed" not in text, text[:3000]
    assert all("COLUMN_REMOVED" not in c.body for c in flow.impact_comments(pull))


async def test_a_yaml_bomb_in_a_dbt_property_file_is_named_and_the_worker_carries_on(flow: PullRequestFlow) -> None:
    pull, delivery = await open_pr(flow, {"models/marts/bomb.yml": BILLION_LAUGHS.replace("teams: *i\n", "models: *i\n")})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, "models/marts/bomb.yml", "billion laughs")
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_model_whose_jinja_recurses_forever_is_reported_and_the_worker_carries_on(flow: PullRequestFlow) -> None:
    model = "{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}\nselect {{ again(0) }} as x\n"
    pull, delivery = await open_pr(flow, {"models/marts/loop.sql": model})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, "models/marts/loop.sql")
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_model_whose_jinja_loops_for_hours_is_stopped_and_reported(flow: PullRequestFlow, monkeypatch: Any) -> None:
    from app import engine

    monkeypatch.setattr(engine, "analysis_budget", lambda settings: 1.5)  # 60% of the job time-out, scaled down
    model = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}"
        "{% endfor %}{% endfor %}{% endfor %}\nselect 1 as x\n"
    )
    pull, delivery = await open_pr(flow, {"models/marts/spin.sql": model})
    assert delivery.status == "done", delivery.last_error
    check = completed_saying(flow, pull, "models/marts/spin.sql", "could not be analysed: over the 1.5 s time limit")
    assert check.conclusion == "action_required"
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_pull_request_with_over_three_thousand_files_is_analysed_from_its_head_tree(flow: PullRequestFlow) -> None:
    text = flow.repo.files_at("main")[FCT].decode()
    changes: dict[str, Any] = {f"docs/page_{i:04}.md": f"page {i}\n" for i in range(3_100)}
    changes[FCT] = text.replace("    plan_code,\n", "")
    pull, delivery = await open_pr(flow, changes)
    assert delivery.status == "done", delivery.last_error
    check = completed_saying(flow, pull, "plan_code")
    assert check.conclusion == "action_required"


async def test_a_push_of_a_model_that_loops_for_hours_fails_its_sync_and_frees_the_engine(
    flow: PullRequestFlow, monkeypatch: Any
) -> None:
    from app import engine

    monkeypatch.setattr(engine, "analysis_budget", lambda settings: 1.5)
    model = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\nselect 1 as x\n"
    )
    before = flow.repo.resolve("main")
    flow.repo.push("main", {"models/marts/spin.sql": model})
    delivery = await settle(flow, "push", flow.fake.event_push(flow.repo, "main", before))
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "over the 1.5 s time limit" in delivery.last_error and "acme/warehouse" in delivery.last_error
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_yaml_bomb_in_a_models_property_file_does_not_hold_the_worker(flow: PullRequestFlow, monkeypatch: Any) -> None:
    from app import engine

    monkeypatch.setattr(engine, "analysis_budget", lambda settings: 1.5)
    bomb = BILLION_LAUGHS.replace("teams: *i\nconsumers: *i\nignore: *i\n", "version: 2\nmodels: *i\n")
    pull, delivery = await open_pr(flow, {"models/marts/bomb.yml": bomb})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, "models/marts/bomb.yml")
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_thirty_megabyte_sql_file_is_named_as_too_large_at_the_real_limit(flow: PullRequestFlow) -> None:
    line = "insert into analytics.events values (1, 'x', 'y', 'z');\n"
    huge = line * (30 * 1024 * 1024 // len(line) + 1)
    pull, delivery = await open_pr(flow, {"models/marts/seed_events.sql": huge})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, "models/marts/seed_events.sql", "too large", "30.0 MB")


async def test_a_configuration_of_several_megabytes_is_named_and_the_defaults_apply(flow: PullRequestFlow) -> None:
    files = repo_files("revenue_dbt")
    files[".tessera.yml"] = files[".tessera.yml"] + "".join(f"# padding line {i} " + "x" * 60 + "\n" for i in range(60_000))
    flow.use_repo("acme/padded", files)
    pull, delivery = await open_pr(flow, {FCT: files[FCT].replace("    plan_code,\n", "")})
    assert delivery.status == "done", delivery.last_error
    completed_saying(flow, pull, ".tessera.yml", "MB")


async def test_a_drop_masked_by_a_jinja_call_tessera_cannot_render_still_holds_the_check(flow: PullRequestFlow) -> None:
    """The 3am story's drop of ``plan_code``, hidden behind ``toyaml(graph)`` (valid in dbt):
    the model can no longer be read, so its readers are asked as for the drop itself."""
    text = flow.repo.files_at("main")[FCT].decode()
    masked = "{% set _t = toyaml(graph) %}\n" + text.replace("    plan_code,\n", "")
    pull, delivery = await open_pr(flow, {FCT: masked})
    assert delivery.status == "done", delivery.last_error
    check = completed_saying(flow, pull, "UNPARSED on fct_revenue", "@acme/growth")
    assert check.conclusion == "action_required"
    [comment] = flow.repo.bot_comments(pull.number)
    assert "growth" in comment.body.lower()
