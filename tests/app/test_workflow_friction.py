"""The friction budget: harmless pull requests pass with no comment, in a handful of API calls."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow, repo_files

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"
MARTS_YML = "models/marts/marts.yml"


def _text(flow: PullRequestFlow, path: str) -> str:
    return flow.repo.files_at("main")[path].decode()


async def test_a_description_change_passes_silently(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    yml = _text(flow, MARTS_YML).replace("Revenue per order.", "Revenue per order, in euros.")
    pull = await flow.open_pr({MARTS_YML: yml})
    assert flow.check(pull).conclusion == "success"
    assert flow.repo.bot_comments(pull.number) == []


async def test_reformatting_sql_passes_silently(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    sql = "SELECT order_id, customer_id, amount AS revenue, plan_code, ordered_at\n  FROM {{ ref('stg_orders') }}  -- tidy\n"
    pull = await flow.open_pr({FCT: sql})
    check = flow.check(pull)
    assert check.conclusion == "success"
    assert check.annotations == []
    assert flow.repo.bot_comments(pull.number) == []


async def test_a_one_file_sql_pr_costs_at_most_eight_api_calls(pr_flow: PullRequestFlow, app_settings: Settings) -> None:
    flow = pr_flow
    flow.use_repo("acme/migrations", repo_files("warehouse_sql"))
    before = len(flow.fake.requests)
    pull = await flow.open_pr({"migrations/002_channel.sql": "ALTER TABLE analytics.orders ADD COLUMN channel VARCHAR(20);\n"})
    calls = flow.api_calls(before)
    assert flow.check(pull).conclusion == "success"
    assert flow.repo.bot_comments(pull.number) == []
    assert len(calls) <= 8, calls
    # The cold cache fetched the base's files once; a second PR on the same base fetches only its own file.
    before = len(flow.fake.requests)
    await flow.open_pr({"migrations/002_region.sql": "ALTER TABLE analytics.orders ADD COLUMN region VARCHAR(2);\n"})
    warm = flow.api_calls(before)
    blob_calls = [c for c in warm if "/git/blobs/" in c[1]]
    assert len(blob_calls) == 1 and len(warm) <= 5, warm
    # Parse results outlive the process: they are kept beside the database.
    # (beside TESSERA_DB's path even when the store is PostgreSQL: each replica keeps its own)
    assert list(Path(app_settings.db_path + ".parse-cache").glob("packs/*.pkl"))
    print(f"one-file SQL PR: {len(calls)} calls cold, {len(warm)} warm: {warm}")


async def test_a_one_model_dbt_pr_is_counted(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    before = len(flow.fake.requests)
    text = _text(flow, FCT)
    pull = await flow.open_pr({FCT: text.replace("    ordered_at\n", "    ordered_at,\n    1 as order_count\n")})
    calls = flow.api_calls(before)
    assert flow.check(pull).conclusion == "success"
    files = len(flow.repo.files_at("main"))
    # check look-up + check create + PR files + base tree + each base blob once + the changed blob
    # + check update
    assert len(calls) <= files + 6, calls
    before = len(flow.fake.requests)
    await flow.open_pr({FCT: text.replace("    ordered_at\n", "    ordered_at,\n    2 as order_rank\n")})
    warm = flow.api_calls(before)
    assert len(warm) <= 5, warm
    print(f"one-model dbt PR ({files} files in the repository): {len(calls)} calls cold, {len(warm)} warm")


async def test_more_than_fifty_findings_are_annotated_across_several_updates(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    columns = ",\n".join(f"    c{n} INTEGER" for n in range(60))
    files = {
        ".tessera.yml": 'sql: {paths: ["migrations/**/*.sql"], dialect: postgres}\n',
        "migrations/001_wide.sql": f"CREATE TABLE analytics.wide (\n{columns}\n);\n",
    }
    flow.use_repo("acme/wide", files)
    drops = "".join(f"ALTER TABLE analytics.wide DROP COLUMN c{n};\n" for n in range(60))
    pull = await flow.open_pr({"migrations/002_drop.sql": drops})
    check = flow.check(pull)
    assert len(check.annotations) == 60
    assert {a["path"] for a in check.annotations} == {"migrations/002_drop.sql"}
    patches = flow.fake.requests_to("PATCH", "/repos/acme/wide/check-runs/*")
    assert [len(p.json["output"].get("annotations", [])) for p in patches] == [50, 10]


def test_only_files_the_engine_reads_are_prefetched() -> None:
    from app.workflow.github_source import TreeEntry, likely_reads
    from rules.config import parse_config

    paths = [
        ".tessera.yml",
        ".github/workflows/ci.yml",
        ".github/CODEOWNERS",
        "README.md",
        "analytics/dbt_project.yml",
        "analytics/models/a.sql",
        "analytics/models/a.yml",
        "analytics/target/compiled/a.sql",
        "analytics/models/sandbox/tmp.sql",
        "migrations/001.sql",
        "scripts/adhoc.sql",
    ]
    entries = {p: TreeEntry(p, f"sha-{n}", 10) for n, p in enumerate(paths)}
    config = parse_config('sql: {paths: ["migrations/**/*.sql"]}\nignore: ["analytics/models/sandbox/**"]\n')
    assert sorted(e.path for e in likely_reads(entries, config)) == [
        ".github/CODEOWNERS",
        ".github/workflows/ci.yml",  # may name the dbt adapter: read for the dialect (no dbt.dialect here)
        ".tessera.yml",
        "analytics/dbt_project.yml",
        "analytics/models/a.sql",
        "analytics/models/a.yml",
        "migrations/001.sql",
    ]


async def test_bad_configuration_and_unreadable_sql_are_said_where_the_author_looks(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    files = repo_files("warehouse_sql")
    files[".tessera.yml"] = files[".tessera.yml"] + "compatibility: [not, a, mode\n"
    flow.use_repo("acme/broken", files)
    pull = await flow.open_pr({"migrations/002_oops.sql": "ALTER TABLE analytics.orders FROBNICATE plan_code;\n"})
    check = flow.check(pull)
    assert check.conclusion == "success"  # unreadable SQL is a finding to review (on_unparsed: warn)
    assert "not valid YAML" in check.output["summary"] and "FROBNICATE" in check.output["summary"]
    [comment] = flow.impact_comments(pull)
    assert ".tessera.yml" in comment.body
    assert "migrations/002_oops.sql" in comment.body
