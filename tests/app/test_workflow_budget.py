"""GitHub's API budget: a cold commit's files come as one tarball, a warm pull request fetches only
its changed blobs, and a tarball cannot change what Tessera concludes."""

from __future__ import annotations

import io
import tarfile

import pytest

from app.store import proposals as sql
from app.workflow import github_source
from tests.app.test_robustness_payloads import flow
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakePull, FakeRepo, git_blob_sha, tarball

__all__ = ["flow"]

FCT = "models/marts/fct_revenue.sql"
TARBALLS = "/repos/*/tarball/*"
BLOBS = "/repos/*/git/blobs/*"


def larger_project() -> dict[str, str]:
    """``revenue_dbt`` with a dozen more models: past the point where a tarball pays."""
    files = repo_files("revenue_dbt")
    for n in range(12):
        files[f"models/extra/extra_{n}.sql"] = f"select order_id, revenue * {n} as weighted_{n} from {{{{ ref('fct_revenue') }}}}\n"
    return files


def drop_plan_code(text: str) -> str:
    return text.replace("    plan_code,\n", "")


def outcome(repo: FakeRepo, pull: FakePull) -> tuple[str | None, str | None, list[tuple[str, int, str]]]:
    check = repo.check_run("Tessera", head_sha=pull.head_sha)
    assert check is not None
    notes = sorted((a["path"], a["start_line"], a["message"]) for a in check.annotations)
    return check.conclusion, check.output.get("title"), notes


async def test_a_cold_project_is_read_from_one_tarball_and_the_changed_file_as_a_blob(flow: PullRequestFlow) -> None:
    flow.use_repo("acme/analytics", larger_project())
    pull = await flow.open_pr({FCT: drop_plan_code(repo_files("revenue_dbt")[FCT])})

    assert len(flow.fake.requests_to("GET", TARBALLS)) == 1  # the base: 16 files cold
    assert [r.path.rsplit("/", 1)[1] for r in flow.fake.requests_to("GET", BLOBS)] == [git_blob_sha(
        drop_plan_code(repo_files("revenue_dbt")[FCT]).encode()
    )]  # the head adds one file: cheaper as a blob than as a second archive
    assert len(flow.fake.downloads) == 1
    conclusion, title, _ = outcome(flow.repo, pull)
    assert conclusion == "action_required" and "plan_code" in flow.impact_comments(pull)[0].body
    extra = git_blob_sha(larger_project()["models/extra/extra_3.sql"].encode())
    cached = await flow.store.read(lambda db: sql.get_blobs(db, [extra]))
    assert cached == {extra: larger_project()["models/extra/extra_3.sql"].encode()}


async def test_the_next_pull_request_on_a_warm_cache_fetches_no_tarball(flow: PullRequestFlow) -> None:
    flow.use_repo("acme/analytics", larger_project())
    await flow.open_pr({"models/extra/extra_1.sql": "select order_id from {{ ref('fct_revenue') }}\n"})
    flow.fake.requests.clear()
    flow.fake.downloads.clear()

    pull = await flow.open_pr({FCT: drop_plan_code(repo_files("revenue_dbt")[FCT])})

    assert flow.fake.requests_to("GET", TARBALLS) == [] and flow.fake.downloads == []
    assert len(flow.fake.requests_to("GET", BLOBS)) == 1
    assert outcome(flow.repo, pull)[0] == "action_required"


async def test_findings_from_a_tarball_are_those_from_single_blobs(
    flow: PullRequestFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = larger_project()
    changes = {FCT: drop_plan_code(files[FCT]), "models/extra/extra_2.sql": None}
    first = flow.use_repo("acme/archived", files)
    archived = await flow.open_pr(changes)
    assert len(flow.fake.requests_to("GET", TARBALLS)) == 1

    monkeypatch.setattr(github_source, "ARCHIVE_FROM", 10**9)
    flow.fake.requests.clear()
    second = flow.use_repo("acme/blobbed", {path: text + "\n" for path, text in files.items()})  # other blobs: cold
    blobbed = await flow.open_pr({FCT: drop_plan_code(files[FCT]) + "\n", "models/extra/extra_2.sql": None})
    assert flow.fake.requests_to("GET", TARBALLS) == [] and len(flow.fake.requests_to("GET", BLOBS)) >= 16

    assert outcome(first, archived) == outcome(second, blobbed)
    assert outcome(first, archived)[0] == "action_required"


async def test_a_tarball_with_forged_contents_and_links_changes_nothing_the_analysis_sees(flow: PullRequestFlow) -> None:
    files = larger_project()
    repo = flow.use_repo("acme/analytics", files)
    forged = dict(files)
    forged["models/staging/stg_orders.sql"] = "select 1 as order_id\n"  # would drop every column downstream
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(tarball_of(repo, forged)), mode="r:gz") as honest, tarfile.open(
        fileobj=buffer, mode="w:gz"
    ) as hostile:
        for member in honest.getmembers():
            hostile.addfile(member, honest.extractfile(member) if member.isfile() else None)
        link = tarfile.TarInfo("acme-analytics-0000000/models/marts/marts.yml")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        hostile.addfile(link)
    flow.fake.tarball_override = buffer.getvalue()

    # adds a column to a model nothing reads (dropping one would hold for its unknown readers)
    added = "select order_id, revenue * 0 as weighted_0, revenue from {{ ref('fct_revenue') }}\n"
    pull = await flow.open_pr({"models/extra/extra_0.sql": added})

    assert len(flow.fake.downloads) == 1
    assert outcome(flow.repo, pull)[0] == "success"
    genuine = files["models/staging/stg_orders.sql"].encode()
    fetched = [r.path.rsplit("/", 1)[1] for r in flow.fake.requests_to("GET", BLOBS)]
    assert git_blob_sha(genuine) in fetched
    cached = await flow.store.read(lambda db: sql.get_blobs(db, [git_blob_sha(genuine)]))
    assert cached == {git_blob_sha(genuine): genuine}


def tarball_of(repo: FakeRepo, files: dict[str, str]) -> bytes:
    """The repository's tarball layout, with these contents at its default branch."""
    sha = repo.commit({path: text for path, text in files.items()}, parent=repo.default_branch, branch="forged")
    return tarball(repo, sha)
