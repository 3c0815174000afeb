"""``tessera check`` end to end on real temporary git repositories."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.check import GitSource, main
from tests.dialect_repos import bigquery_repo, drop_plan_code
from tests.fakegithub import FakeGitHub
from tests.shop import drop_coupon_code, drop_discounts, shop_files

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@shop.test", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    """Make the work tree hold exactly ``files`` and commit it; return the commit's SHA."""
    for path in git(repo, "ls-files").splitlines():
        if path not in files:
            (repo / path).unlink()
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def shop_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo, commit(repo, shop_files(), "the shop")


def check(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_breaking_change_read_by_another_team_exits_1_with_the_design_json(
    shop_repo: tuple[Path, str],
) -> None:
    repo, base = shop_repo
    head = commit(repo, drop_discounts(shop_files()), "drop discounts")
    code, out, err = check("--repo", str(repo), "--base", "main~1", "--format", "json")
    assert code == 1, err
    data = json.loads(out)
    assert (data["base"], data["head"], data["status"]) == (base, head, "needs_ack")
    assert set(data) == {
        "base",
        "head",
        "status",
        "changes",
        "impacts",
        "required_acks",
        "migrations",
        "errors",
        "projects",
    }
    removed = [c for c in data["changes"] if c["rule"] == "COLUMN_REMOVED"]
    assert removed and removed[0]["asset"] == "fct_revenue" and removed[0]["column"] == "discounts"
    assert removed[0]["severity"] == "breaking" and removed[0]["path"] == "models/marts/fct_revenue.sql"
    assert data["required_acks"] == [
        {"kind": "team", "team": "growth", "github_team": "shop/growth", "reasons": data["required_acks"][0]["reasons"]}
    ]
    assert {"consumer": "channel_mix", "consumer_type": "exposure", "team": "growth"}.items() <= data[
        "impacts"
    ][0].items()


def test_a_column_nobody_is_known_to_read_from_a_public_model_is_held_for_the_maintainers(
    shop_repo: tuple[Path, str],
) -> None:
    repo, base = shop_repo
    commit(repo, drop_coupon_code(shop_files()), "drop coupon_code")
    code, out, err = check("--repo", str(repo), "--base", base, "--head", "HEAD", "--format", "json")
    assert code == 1, err
    data = json.loads(out)
    assert data["status"] == "needs_ack"
    assert data["required_acks"] == [{
        "kind": "team", "team": "maintainers", "github_team": None,
        "reasons": ["COLUMN_REMOVED on fct_orders.coupon_code: read by readers Tessera does not know"
                    " (no exposure, registration or observed query)"],
        "fallback": True, "reason": "unknown_readers",
    }]
    assert data["impacts"] == [{
        "asset": "fct_orders", "consumer": "fct_orders", "consumer_type": "unknown", "team": None,
        "columns": ["coupon_code"], "rules": ["COLUMN_REMOVED"],
    }]


def test_a_column_nobody_reads_exits_0_when_unknown_readers_only_warn(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    files = shop_files()
    files[".tessera.yml"] += "on_unknown_readers: warn\n"
    base = commit(repo, files, "unknown readers only warn")
    commit(repo, drop_coupon_code(files), "drop coupon_code")
    code, out, err = check("--repo", str(repo), "--base", base, "--head", "HEAD", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "clear" and data["required_acks"] == []
    assert any(c["rule"] == "COLUMN_REMOVED" and c["column"] == "coupon_code" for c in data["changes"])


def test_markdown_output_is_the_pr_comment(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    commit(repo, drop_discounts(shop_files()), "drop discounts")
    code, out, _ = check("--repo", str(repo), "--base", base, "--format", "markdown")
    assert code == 1
    assert out.startswith("<!-- tessera:impact -->")
    assert "@shop/growth" in out and "/tessera ack" in out and "```mermaid" in out


def test_the_base_side_is_where_the_branch_forked(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, drop_coupon_code(shop_files()), "drop coupon_code")
    git(repo, "checkout", "-q", "main")
    commit(repo, drop_discounts(shop_files()), "meanwhile on main")
    code, out, err = check("--repo", str(repo), "--base", "main", "--head", "feature", "--format", "json")
    assert code == 1, err  # the public fct_orders' coupon_code: held for its unknown readers
    data = json.loads(out)
    assert data["base"] == base
    assert not any(c["column"] == "discounts" for c in data["changes"])


def test_uncommitted_edits_do_not_leak_into_the_analysis_but_are_named_on_stderr(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    (repo / "models/marts/fct_revenue.sql").write_text("select 1 as x\n")
    code, out, err = check("--repo", str(repo), "--base", base, "--format", "json")
    assert code == 0
    assert json.loads(out)["changes"] == []
    assert "1 uncommitted change(s) are not checked (models/marts/fct_revenue.sql)" in err
    assert "--head WORKTREE" in err


def test_head_worktree_checks_the_uncommitted_edits(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    for path, text in drop_discounts(shop_files()).items():
        (repo / path).write_text(text)
    code, out, err = check("--repo", str(repo), "--base", base, "--head", "WORKTREE", "--format", "json")
    assert code == 1, err
    assert any(c["column"] == "discounts" for c in json.loads(out)["changes"])
    assert "uncommitted" not in err
    assert git(repo, "status", "--porcelain") != ""  # the work tree is read, never touched


def test_a_clean_checkout_gets_no_uncommitted_warning(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    code, _, err = check("--repo", str(repo), "--base", base, "--format", "json")
    assert code == 0 and "uncommitted" not in err


def test_the_parse_cache_lives_in_the_git_directory_and_warm_runs_agree(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    commit(repo, drop_discounts(shop_files()), "drop discounts")
    first = check("--repo", str(repo), "--base", base, "--format", "json")
    second = check("--repo", str(repo), "--base", base, "--format", "json")
    assert first == second
    assert (repo / ".git" / "tessera-cache").is_dir()
    assert git(repo, "status", "--porcelain") == ""


def test_an_unknown_revision_is_a_usage_error(shop_repo: tuple[Path, str]) -> None:
    repo, _ = shop_repo
    code, out, err = check("--repo", str(repo), "--base", "no-such-branch")
    assert code == 2 and out == ""
    assert "unknown revision 'no-such-branch'" in err


def test_a_folder_that_is_not_a_repository_is_a_usage_error_that_says_so(tmp_path: Path) -> None:
    code, _, err = check("--repo", str(tmp_path), "--base", "main")
    assert code == 2
    assert err == f"tessera check: {tmp_path} is not a git repository: run tessera check inside a checkout, or pass --repo DIR\n"


def test_a_repository_without_a_commit_says_so(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    code, _, err = check("--repo", str(tmp_path), "--base", "main")
    assert code == 2 and "has no commit yet" in err and "unknown revision" not in err


def test_missing_base_is_a_usage_error() -> None:
    code, _, err = check("--format", "json")
    assert code == 2 and "--base" in err


def test_git_source_reads_files_and_blob_ids_at_a_revision(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    files = shop_files()
    commit(repo, {**files, "notes/bin.dat": "a\0b", "models/new.sql": "select 2"}, "more")
    with GitSource(repo, base) as source:
        assert sorted(source.paths()) == sorted(files)
        assert source.read("models/marts/fct_revenue.sql") == files["models/marts/fct_revenue.sql"]
        assert source.read("models/new.sql") is None
        assert source.blob_id("dbt_project.yml") == git(repo, "rev-parse", f"{base}:dbt_project.yml")
    with GitSource(repo, "HEAD") as source:
        assert source.read("models/new.sql") == "select 2"
        assert source.read("notes/bin.dat") is None


def test_the_tessera_console_script_runs_check(
    shop_repo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main as tessera

    repo, base = shop_repo
    commit(repo, drop_discounts(shop_files()), "drop discounts")
    code = tessera(["check", "--repo", str(repo), "--base", base, "--format", "json"])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["required_acks"][0]["team"] == "growth"


def test_the_console_script_leaves_at_once_with_its_whole_output_and_exit_code(shop_repo: tuple[Path, str]) -> None:
    """``tessera check`` skips the interpreter's teardown: what it wrote through a pipe (the
    whole JSON, and the markdown) still arrives, and the exit code is the check's."""
    repo, base = shop_repo
    commit(repo, drop_discounts(shop_files()), "drop discounts")
    script = "import sys; from app.cli import script; sys.argv = ['tessera', *sys.argv[1:]]; script()"
    for form in ("json", "markdown"):
        done = subprocess.run(
            [sys.executable, "-c", script, "check", "--repo", str(repo), "--base", base, "--format", form],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        if form == "json":
            assert json.loads(done.stdout)["required_acks"][0]["team"] == "growth"
        else:
            assert done.stdout.startswith("<!-- tessera:impact -->") and "@" in done.stdout


def _manifest(fct_columns: list[str]) -> str:
    """A small dbt v12 manifest: stg_orders → fct_orders → Growth's channels exposure."""

    def model(name: str, sql: str, deps: list[str]) -> dict[str, object]:
        return {
            "resource_type": "model",
            "name": name,
            "unique_id": f"model.shop.{name}",
            "package_name": "shop",
            "path": f"{name}.sql",
            "original_file_path": f"models/{name}.sql",
            "raw_code": sql,
            "compiled_code": sql,
            "relation_name": f'"shop"."main"."{name}"',
            "depends_on": {"nodes": deps, "macros": []},
            "columns": {},
            "config": {"materialized": "table", "contract": {"enforced": False}, "meta": {}},
            "meta": {"tessera": {"owner": "commerce"}},
        }

    stg = model("stg_orders", "select 1 as order_id, 2.5 as amount, 'web' as channel", [])
    fct_sql = f'select {", ".join(fct_columns)} from "shop"."main"."stg_orders"'
    fct = model("fct_orders", fct_sql, ["model.shop.stg_orders"])
    exposure = {
        "name": "channels",
        "resource_type": "exposure",
        "type": "dashboard",
        "owner": {"email": "growth@shop.test"},
        "depends_on": {"nodes": ["model.shop.fct_orders"]},
        "meta": {"tessera": {"columns": ["channel"]}},
        "original_file_path": "models/exposures.yml",
    }
    return json.dumps(
        {
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                "adapter_type": "duckdb",
                "project_name": "shop",
            },
            "nodes": {"model.shop.stg_orders": stg, "model.shop.fct_orders": fct},
            "sources": {},
            "groups": {},
            "exposures": {"exposure.shop.channels": exposure},
        }
    )


def test_a_manifest_from_outside_the_repository_stands_in_for_the_heads(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    config = (
        "teams:\n  commerce: {github: shop/commerce}\n  growth: {github: shop/growth, emails: [growth@shop.test]}\n"
        "dbt: {dialect: duckdb, manifest: target/manifest.json}\n"
    )
    base = commit(
        repo,
        {".tessera.yml": config, "target/manifest.json": _manifest(["order_id", "amount", "channel"])},
        "base",
    )
    compiled = tmp_path / "compiled" / "manifest.json"
    compiled.parent.mkdir()
    compiled.write_text(_manifest(["order_id", "amount"]))
    code, out, err = check(
        "--repo", str(repo), "--base", base, "--manifest", str(compiled), "--format", "json"
    )
    assert code == 1, err
    data = json.loads(out)
    assert any(c["rule"] == "COLUMN_REMOVED" and c["column"] == "channel" for c in data["changes"])
    assert [r["team"] for r in data["required_acks"]] == ["growth"]
    compiled.write_text(_manifest(["order_id", "amount", "channel", "amount * 2 as double_amount"]))
    code, out, _ = check("--repo", str(repo), "--base", base, "--manifest", str(compiled), "--format", "json")
    assert code == 0 and json.loads(out)["required_acks"] == []


def test_a_missing_manifest_file_is_a_usage_error(shop_repo: tuple[Path, str], tmp_path: Path) -> None:
    repo, base = shop_repo
    code, _, err = check("--repo", str(repo), "--base", base, "--manifest", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read the manifest" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [("{not json", "is not valid JSON"), ('{"results": []}', "is not a dbt manifest")],
    ids=["invalid-json", "not-a-manifest"],
)
def test_a_manifest_file_that_is_not_a_manifest_is_a_usage_error_not_a_finding(
    shop_repo: tuple[Path, str], tmp_path: Path, content: str, expected: str
) -> None:
    repo, base = shop_repo
    bad = tmp_path / "manifest.json"
    bad.write_text(content)
    code, out, err = check("--repo", str(repo), "--base", base, "--manifest", str(bad))
    assert code == 2 and out == ""
    assert expected in err


def test_git_source_handles_odd_file_names_and_skips_symlinks(tmp_path: Path) -> None:
    repo = tmp_path / "odd"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {"models/with space.sql": "select 1 as a", "models/größe.sql": "select 2 as b"}
    commit(repo, files, "odd names")
    (repo / "link.sql").symlink_to("models/with space.sql")
    git(repo, "add", "link.sql")
    git(repo, "commit", "-q", "-m", "a symlink")
    with GitSource(repo, "HEAD") as source:
        assert sorted(source.paths()) == sorted(files)
        assert source.read("models/größe.sql") == "select 2 as b"
        assert source.read("models/with space.sql") == "select 1 as a"


def test_prefetched_files_read_exactly_as_files_read_one_by_one(tmp_path: Path) -> None:
    """One ``git cat-file --batch`` run for many blobs (empty, binary, Latin-1, odd names and
    a size that is not the text's length) gives what reading each file alone gives, and two
    sources sharing their texts read a blob the other already holds without asking git."""
    repo = tmp_path / "many"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {
        "models/empty.sql": "",
        "models/größe.sql": "select 'ü' as umlaut\n",
        "models/with space.sql": "select 1 as a",
        "models/bin.sql": "a\0b",
        **{f"models/m{i:03d}.sql": f"select {i} as n_{i}\n" * (i % 7) for i in range(60)},
    }
    commit(repo, files, "many")
    (repo / "models" / "latin.sql").write_bytes("select 'caf\xe9' as word".encode("latin-1"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "latin-1")
    everything = [*files, "models/latin.sql", "models/absent.sql"]
    with GitSource(repo, "HEAD") as alone:
        expected = {path: alone.read(path) for path in everything}
    assert expected["models/latin.sql"] == "select 'café' as word" and expected["models/bin.sql"] is None
    texts: dict[str, str | None] = {}
    with GitSource(repo, "HEAD", texts=texts) as batched:
        assert batched.prefetch(everything) == len({batched.blob_id(p) for p in everything} - {None})
        assert {path: batched.read(path) for path in everything} == expected
    with GitSource(repo, "HEAD~1", texts=texts) as other:
        assert other.prefetch(everything) == 0  # every blob it has is already held
        assert other.read("models/größe.sql") == files["models/größe.sql"]
        assert other._batch is None  # never started git cat-file for a single file


FREEZE = "{% set n = 10 %}{% set x = (n ** (n ** 7 * 4)) %}\nselect 1 as x\n"
MEMORY_BOMB = "{{ 'a' * 10**9 }}\nselect 1 as x\n"


def test_a_model_that_never_finishes_stops_the_check_at_the_timeout_with_exit_2(
    shop_repo: tuple[Path, str],
) -> None:
    repo, base = shop_repo
    commit(repo, {**shop_files(), "models/marts/freeze.sql": FREEZE}, "a model that never finishes")
    code, out, err = check("--repo", str(repo), "--base", base, "--timeout", "2")
    assert (code, out) == (2, "")
    assert err == "tessera check: the analysis was stopped: over the 2 s time limit (--timeout)\n"


def test_a_memory_bomb_stops_the_check_at_the_memory_limit_with_exit_2(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    commit(repo, {**shop_files(), "models/marts/bomb.sql": MEMORY_BOMB}, "a model that wants gigabytes")
    code, out, err = check("--repo", str(repo), "--base", base, "--memory-mb", "300")
    assert (code, out) == (2, "")
    assert err == "tessera check: the analysis was stopped: over the 300 MB memory limit (--memory-mb)\n"


def test_limits_that_are_not_positive_numbers_are_usage_errors(shop_repo: tuple[Path, str]) -> None:
    repo, base = shop_repo
    code, _, err = check("--repo", str(repo), "--base", base, "--timeout", "0")
    assert code == 2 and "--timeout: must be above zero, got 0" in err
    code, _, err = check("--repo", str(repo), "--base", base, "--memory-mb", "lots")
    assert code == 2 and "--memory-mb: not a number: 'lots'" in err


def test_a_bigquery_repository_without_configuration_is_checked_in_bigquery_and_says_so(tmp_path: Path) -> None:
    repo = tmp_path / "bq"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    base = commit(repo, bigquery_repo(), "a BigQuery project")
    commit(repo, drop_plan_code(bigquery_repo()), "drop plan_code")
    code, out, err = check("--repo", str(repo), "--base", base, "--format", "json")
    data = json.loads(out)
    assert [(c["rule"], c["column"]) for c in data["changes"] if c["severity"] == "breaking"] == [
        ("COLUMN_REMOVED", "plan_code")
    ]
    assert data["projects"] == [
        {"path": "analytics", "dialect": {"name": "bigquery", "source": "requirements.txt: dbt-bigquery"}}
    ]
    assert err == "tessera check: read analytics/ as BigQuery (requirements.txt: dbt-bigquery)\n"
    code, out, _ = check("--repo", str(repo), "--base", base)
    assert "read `analytics/` as BigQuery (`requirements.txt: dbt-bigquery`)" in out.splitlines()[-1]


def _commit_as(repo: Path, email: str, files: dict[str, str], message: str) -> str:
    """Commit ``files`` with ``email`` as the author."""
    commit(repo, files, message)
    subprocess.run(
        ["git", "-C", str(repo), "-c", f"user.name={email.split('@')[0]}", "-c", f"user.email={email}",
         "commit", "-q", "--amend", "--no-edit", "--reset-author"],
        check=True, capture_output=True,
    )  # fmt: skip
    return git(repo, "rev-parse", "HEAD")


def test_with_no_configuration_a_reader_nobody_owns_is_asked_of_who_last_changed_it(tmp_path: Path) -> None:
    repo = tmp_path / "plain"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {
        "dbt_project.yml": "name: plain\nconfig-version: 2\n",
        "models/orders.sql": "select 1 as id, 2 as amount\n",
        "models/revenue.sql": "select id, amount from {{ ref('orders') }}\n",
    }
    _commit_as(repo, "bob@shop.test", files, "orders")
    files["models/revenue.sql"] = "select id, amount, amount * 2 as double_amount from {{ ref('orders') }}\n"
    base = _commit_as(repo, "alice@shop.test", files, "revenue doubled")
    files["models/orders.sql"] = "select 1 as id\n"
    _commit_as(repo, "bob@shop.test", files, "drop amount")

    code, out, err = check("--repo", str(repo), "--base", base, "--format", "json")

    assert code == 1, err
    data = json.loads(out)
    # alice for the reader she changed; `orders` is a published mart, so the maintainers hold for
    # its readers outside the repository besides
    assert [(a.get("team"), a.get("user"), a.get("owner_source"), a.get("reason")) for a in data["required_acks"]] == [
        ("maintainers", None, None, "unknown_readers"),
        (None, "alice@shop.test", "history", None),
    ]


PACKAGE_MACROS = """\
{% macro plan_fields(include_code=true) %}
    {%- if include_code %}plan_code,{% endif %}
    ordered_at
{% endmacro %}
"""


@pytest.fixture
async def package_hub(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """The fake hub and codeload serving a made-up package, ``acme-labs/acme_utils`` 0.3.1."""
    package = fake_github.add_repo("acme-labs/acme-utils", private=False)
    package.commit({"dbt_project.yml": "name: acme_utils\n", "macros/plan.sql": PACKAGE_MACROS}, branch="0.3.1")
    fake_github.publish_package("acme-labs/acme_utils", "0.3.1", package, "0.3.1")
    monkeypatch.setenv("TESSERA_DBT_HUB_URL", fake_github.hub_url)
    monkeypatch.setenv("TESSERA_CODELOAD_URL", fake_github.codeload_url)
    monkeypatch.delenv("TESSERA_PACKAGES_OFFLINE", raising=False)
    return fake_github


def _package_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "pkgs"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {
        "dbt_project.yml": "name: shop\nversion: '1.0'\nconfig-version: 2\n",
        "packages.yml": "packages:\n  - package: acme-labs/acme_utils\n    version: 0.3.1\n",
        "models/fct_orders.sql": "select id, {{ acme_utils.plan_fields() }} from raw.orders\n",
        "models/props.yml": (
            "version: 2\nexposures:\n  - name: plans_dashboard\n    type: dashboard\n"
            "    owner: {name: Growth, email: growth@acme.test}\n    depends_on: [ref('fct_orders')]\n"
        ),
    }
    commit(repo, files, "base")
    files["models/fct_orders.sql"] = files["models/fct_orders.sql"].replace("plan_fields()", "plan_fields(include_code=false)")
    commit(repo, files, "drop plan_code through the package macro")
    return repo


async def test_check_fetches_a_hub_package_and_renders_the_model_with_its_macros(
    package_hub: FakeGitHub, tmp_path: Path
) -> None:
    repo = _package_repo(tmp_path)
    code, out, err = await asyncio.to_thread(check, "--repo", str(repo), "--base", "main~1", "--format", "json")
    data = json.loads(out)
    removed = [c["column"] for c in data["changes"] if c["rule"] == "COLUMN_REMOVED"]
    assert removed == ["plan_code"], err
    assert data["notes"] == ["dbt packages read at their locked versions: acme_utils 0.3.1."]
    assert "tessera check: dbt packages read at their locked versions: acme_utils 0.3.1." in err
    assert package_hub.downloads == ["/_codeload/acme-labs/acme-utils/tar.gz/0.3.1"]


async def test_check_offline_fetches_nothing_and_says_what_it_did_not_read(
    package_hub: FakeGitHub, tmp_path: Path
) -> None:
    repo = _package_repo(tmp_path)
    code, out, err = await asyncio.to_thread(
        check, "--repo", str(repo), "--base", "main~1", "--format", "json", "--offline"
    )
    data = json.loads(out)
    assert data["notes"][0].startswith("dbt packages not fetched (offline): acme-labs/acme_utils 0.3.1;")
    assert package_hub.hub_requests == [] and package_hub.downloads == []
