"""dbt packages at their locked version: the App fetches them from GitHub (through the hub's index),
renders models with their macros, caches them, and falls back with a note when it cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.config import Settings
from app.workflow import packages
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub, FakeRepo
from tests.fixtures_github import INSTALLATION_ID

MODEL = "models/marts/fct_revenue.sql"
PACKAGE_PROJECT = "name: acme_utils\nversion: '0.3.1'\nconfig-version: 2\nmacro-paths: ['macros']\n"
# A made-up package: one macro calls another of its own package unqualified, as dbt allows.
PACKAGE_MACROS = """\
{% macro order_keys() %}
    order_id,
    customer_id
{% endmacro %}

{% macro plan_fields(include_code=true) %}
    {%- if include_code %}plan_code,{% endif %}
    {{ stamp_column() }}
{% endmacro %}
"""
PACKAGE_STAMP = "{% macro stamp_column() %}ordered_at{% endmacro %}\n"
USES_PACKAGE = """\
select
    {{ acme_utils.order_keys() }},
    amount as revenue,
    {{ acme_utils.plan_fields() }}
from {{ ref('stg_orders') }}
"""
PACKAGES_YML = "packages:\n  - package: acme-labs/acme_utils\n    version: [\">=0.3.0\", \"<0.5.0\"]\n"
LOCK = "packages:\n  - package: acme-labs/acme_utils\n    version: 0.3.1\nsha1_hash: 0123abcd\n"


def publish(fake: FakeGitHub) -> FakeRepo:
    """The package's public repository, tagged 0.3.1 and 0.4.0, listed on the fake hub."""
    repo = fake.add_repo("acme-labs/acme-utils", private=False)
    repo.commit(
        {"dbt_project.yml": PACKAGE_PROJECT, "macros/keys.sql": PACKAGE_MACROS, "macros/sub/stamp.sql": PACKAGE_STAMP,
         "README.md": "acme utils\n"},
        branch="0.3.1",
    )
    repo.commit(
        {"dbt_project.yml": PACKAGE_PROJECT.replace("0.3.1", "0.4.0"),
         "macros/keys.sql": PACKAGE_MACROS.replace("order_id,", "order_id as id,"),
         "macros/sub/stamp.sql": PACKAGE_STAMP},
        branch="0.4.0",
    )
    fake.publish_package("acme-labs/acme_utils", "0.3.1", repo, "0.3.1")
    fake.publish_package("acme-labs/acme_utils", "0.4.0", repo, "0.4.0")
    return repo


def warehouse_files(**extra: str) -> dict[str, str]:
    files = repo_files("revenue_dbt")
    files.update({MODEL: USES_PACKAGE, "packages.yml": PACKAGES_YML, "package-lock.yml": LOCK, **extra})
    return files


@pytest.fixture
async def flow(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Settings
) -> AsyncIterator[PullRequestFlow]:
    """Tessera against the fake GitHub and its fake dbt hub; ``acme/warehouse`` uses acme_utils."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=warehouse_files())
    settings = app_settings.with_overrides(dbt_hub_url=fake_github.hub_url)
    client = await make_client(settings, github=github_app)
    yield PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)


def package_downloads(fake: FakeGitHub) -> list[str]:
    return [r.path for r in fake.requests_to("GET", "/repos/acme-labs/acme-utils/tarball/*")]


async def test_a_column_a_package_macro_stops_rendering_is_removed_for_the_dashboard_that_reads_it(
    flow: PullRequestFlow,
) -> None:
    publish(flow.fake)
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("plan_fields()", "plan_fields(include_code=false)")})

    check = flow.check(pull)
    assert check.conclusion == "action_required"
    assert "Note: dbt packages read at their locked versions: acme_utils 0.3.1." in check.output["summary"]
    [comment] = flow.impact_comments(pull)
    assert "plan_code" in comment.body
    assert "revenue_dashboard" in comment.body
    assert "could not" not in comment.body.lower()
    assert "<sub>dbt packages read at their locked versions: acme_utils 0.3.1.</sub>" in comment.body
    assert package_downloads(flow.fake) == ["/repos/acme-labs/acme-utils/tarball/0.3.1"]


async def test_an_unchanged_package_rendered_column_list_finds_nothing(flow: PullRequestFlow) -> None:
    publish(flow.fake)
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount  as  revenue")})

    check = flow.check(pull)
    assert check.conclusion == "success"
    assert flow.impact_comments(pull) == []


async def test_the_second_pull_request_reads_the_package_from_the_cache(flow: PullRequestFlow) -> None:
    publish(flow.fake)
    await flow.open_pr({MODEL: USES_PACKAGE.replace("plan_fields()", "plan_fields(include_code=false)")})
    hub_asked, downloads = len(flow.fake.hub_requests), len(package_downloads(flow.fake))
    assert (hub_asked, downloads) == (1, 1)

    second = await flow.open_pr({MODEL: USES_PACKAGE.replace("acme_utils.order_keys() }},", "acme_utils.order_keys() }}, 1 as one,")})
    assert second.number != 1
    assert (len(flow.fake.hub_requests), len(package_downloads(flow.fake))) == (1, 1)
    summary = flow.check(second).output["summary"]
    assert "Note: dbt packages read at their locked versions: acme_utils 0.3.1." in summary
    assert flow.check(second).conclusion == "success"


async def test_a_package_the_hub_does_not_know_falls_back_to_built_in_renderings_with_a_note(
    flow: PullRequestFlow,
) -> None:
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    check = flow.check(pull)
    assert check.status == "completed"
    assert (
        "Note: dbt package acme-labs/acme_utils 0.3.1 was not fetched: the dbt hub does not know it (404); its "
        "macros are rendered with Tessera's built-in versions of the common dbt_utils and dbt macros."
    ) in check.output["summary"].splitlines()
    assert package_downloads(flow.fake) == []


async def test_a_package_archive_github_refuses_falls_back_with_a_note(flow: PullRequestFlow) -> None:
    package = publish(flow.fake)
    flow.fake.publish_package("acme-labs/acme_utils", "0.3.1", package, "no-such-tag")
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    summary = flow.check(pull).output["summary"]
    assert "dbt package acme-labs/acme_utils 0.3.1 was not fetched: acme-labs/acme-utils@\u2060no-such-tag could not be downloaded" in summary
    assert flow.check(pull).status == "completed"


async def test_a_pull_request_that_bumps_the_lock_is_read_with_the_base_branch_packages(flow: PullRequestFlow) -> None:
    publish(flow.fake)
    pull = await flow.open_pr(
        {"package-lock.yml": LOCK.replace("0.3.1", "0.4.0"), MODEL: USES_PACKAGE.replace("plan_fields()", "plan_fields(include_code=false)")}
    )

    summary = flow.check(pull).output["summary"]
    assert (
        "Note: This pull request changes package-lock.yml: Tessera read both sides with the base branch's packages "
        "(it never fetches code a pull request names before it merges)."
    ) in summary.splitlines()
    assert package_downloads(flow.fake) == ["/repos/acme-labs/acme-utils/tarball/0.3.1"]
    [comment] = flow.impact_comments(pull)
    assert "plan_code" in comment.body
    assert "order_id" not in comment.body  # 0.4.0 renames it; the base's 0.3.1 does not


async def test_offline_the_app_fetches_nothing_and_says_so(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Settings
) -> None:
    publish(fake_github)
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=warehouse_files())
    settings = app_settings.with_overrides(dbt_hub_url=fake_github.hub_url, packages_offline=True)
    flow = PullRequestFlow(fake=fake_github, client=await make_client(settings, github=github_app), store=store, repo=repo)
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    summary = flow.check(pull).output["summary"]
    assert "Note: dbt packages not fetched (offline): acme-labs/acme_utils 0.3.1;" in summary
    assert fake_github.hub_requests == [] and package_downloads(fake_github) == []


async def test_a_git_package_off_github_is_not_fetched_and_named(flow: PullRequestFlow) -> None:
    lock = "packages:\n  - git: https://gitlab.example.com/acme/utils.git\n    revision: 0123456789abcdef0123456789abcdef01234567\n"
    flow.repo.commit({"package-lock.yml": lock, "packages.yml": None}, branch="main")
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    summary = flow.check(pull).output["summary"]
    assert "was not fetched: not a GitHub repository: Tessera fetches packages from GitHub only" in summary
    assert flow.fake.hub_requests == []


async def test_without_a_lock_file_the_highest_hub_version_in_the_range_is_read(flow: PullRequestFlow) -> None:
    publish(flow.fake)
    flow.repo.commit({"package-lock.yml": None}, branch="main")
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    assert "Note: dbt packages read at their locked versions: acme_utils 0.4.0." in flow.check(pull).output["summary"]
    assert package_downloads(flow.fake) == ["/repos/acme-labs/acme-utils/tarball/0.4.0"]


async def test_a_local_package_is_read_from_the_repository_itself(flow: PullRequestFlow) -> None:
    flow.repo.commit(
        {
            "packages.yml": "packages:\n  - local: shared/acme_utils\n",
            "package-lock.yml": None,
            "shared/acme_utils/dbt_project.yml": PACKAGE_PROJECT,
            "shared/acme_utils/macros/keys.sql": PACKAGE_MACROS,
            "shared/acme_utils/macros/stamp.sql": PACKAGE_STAMP,
        },
        branch="main",
    )
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("plan_fields()", "plan_fields(include_code=false)")})

    [comment] = flow.impact_comments(pull)
    assert "plan_code" in comment.body
    assert flow.fake.hub_requests == [] and package_downloads(flow.fake) == []


async def test_a_hub_answer_pointing_off_github_is_never_followed(flow: PullRequestFlow) -> None:
    flow.fake.publish_package("acme-labs/acme_utils", "0.3.1", None, tarball_url=f"{flow.fake.web_url}/internal/pkg.tgz")
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    summary = flow.check(pull).output["summary"]
    assert "dbt package acme-labs/acme_utils 0.3.1 was not fetched: the hub points at" in summary
    assert "not a GitHub tarball: not fetched" in summary
    assert not [r for r in flow.fake.requests if r.path.startswith("/internal")]
    assert flow.check(pull).status == "completed"


async def test_a_package_archive_over_the_size_limit_falls_back_with_a_note(
    flow: PullRequestFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(flow.fake)
    monkeypatch.setattr(packages, "MAX_PACKAGE_ARCHIVE_BYTES", 64)
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    summary = flow.check(pull).output["summary"]
    assert "dbt package acme-labs/acme_utils 0.3.1 was not fetched: acme-labs/acme-utils@" in summary
    assert "archive is over" in summary
    assert flow.check(pull).status == "completed"


async def test_an_unreachable_hub_falls_back_with_a_note(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Settings,
    unused_tcp_port: int,
) -> None:
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=warehouse_files())
    settings = app_settings.with_overrides(dbt_hub_url=f"http://127.0.0.1:{unused_tcp_port}")
    flow = PullRequestFlow(fake=fake_github, client=await make_client(settings, github=github_app), store=store, repo=repo)
    pull = await flow.open_pr({MODEL: USES_PACKAGE.replace("amount as revenue", "amount as revenue, 1 as one")})

    summary = flow.check(pull).output["summary"]
    assert "dbt package acme-labs/acme_utils 0.3.1 was not fetched: the dbt hub could not be reached" in summary
