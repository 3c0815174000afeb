"""A reading model nobody declares an owner for is owned by whoever last changed it.

With no configuration a dbt project rarely names owners for its models, so a column dropped from
one model that another model reads asked nobody. The person who last changed the reader (not the
change's own author, not a bot) is who knows what it needs; a declared owner always comes first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rules.model import Analysis
from rules.owners import PersonRef, history_holder
from tests.rules.test_analyze import run

PROJECT = "name: shop\nconfig-version: 2\n"
ORDERS = "select 1 as id, 2 as amount, 'a' as status\n"
READER = "select id, amount from {{ ref('orders') }}\n"


@dataclass(frozen=True)
class History:
    """Who changed each file, as ``tessera check`` reads it from git."""

    recent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    authors: frozenset[str] = frozenset({"bob@shop.test"})

    def recent_authors(self, path: str) -> tuple[str, ...]:
        return self.recent.get(path, ())

    def change_authors(self) -> frozenset[str]:
        return self.authors


def _files(reader_schema: str = "") -> dict[str, str]:
    files = {
        # `orders` is a published mart: its readers outside the repository are another question
        # (tests/rules/cases/unknown_readers.yml), kept out of these by `warn`
        ".tessera.yml": "on_unknown_readers: warn\n",
        "dbt_project.yml": PROJECT,
        "models/orders.sql": ORDERS,
        "models/revenue.sql": READER,
    }
    if reader_schema:
        files["models/schema.yml"] = reader_schema
    return files


def _drop_amount(files: dict[str, str]) -> dict[str, str]:
    return {**files, "models/orders.sql": "select 1 as id, 'a' as status\n"}


def _check(history: History | None, files: dict[str, str] | None = None) -> Analysis:
    base = files or _files()
    return run(base, _drop_amount(base), history=history)


def test_a_dropped_column_read_by_a_model_nobody_owns_asks_who_last_changed_that_model() -> None:
    history = History({"models/revenue.sql": ("bob@shop.test", "alice@shop.test", "carol@shop.test")})
    result = _check(history)
    assert result.status == "needs_ack"
    (ack,) = result.required_acks
    assert (ack.kind, ack.user, ack.owner_source, ack.fallback) == ("user", "alice@shop.test", "history", False)
    assert "COLUMN_REMOVED on orders.amount" in ack.reasons[0] and "revenue" in ack.reasons[0]
    assert result.to_dict()["required_acks"][0]["owner_source"] == "history"
    assert ("revenue", "model") in {(i.consumer, i.consumer_type) for i in result.impacts}


def test_without_history_the_same_change_asks_nobody() -> None:
    result = _check(None)
    assert result.status == "clear" and result.required_acks == ()


def test_a_reader_only_the_author_ever_changed_is_their_own_and_asks_nobody() -> None:
    result = _check(History({"models/revenue.sql": ("bob@shop.test", "dependabot[bot]@users.noreply.github.com")}))
    assert result.status == "clear" and result.required_acks == ()


def test_a_declared_owner_of_the_reader_comes_before_its_history() -> None:
    schema = "version: 2\nmodels:\n  - name: revenue\n    meta: {owner: finance@shop.test}\n"
    result = _check(History({"models/revenue.sql": ("alice@shop.test",)}), _files(schema))
    (ack,) = result.required_acks
    assert (ack.user, ack.owner_source) == ("finance@shop.test", None)
    assert "owner_source" not in result.to_dict()["required_acks"][0]


def test_the_changed_models_own_editors_are_not_its_team_so_their_readers_still_ask() -> None:
    # alice last changed both the producer and the reader: she is asked for the reader she wrote
    history = History({"models/orders.sql": ("alice@shop.test",), "models/revenue.sql": ("alice@shop.test",)})
    assert [a.user for a in _check(history).required_acks] == ["alice@shop.test"]


def test_history_skips_bots_and_reads_a_github_noreply_address_as_its_login() -> None:
    history = History(
        {
            "a.sql": ("github-actions[bot]@users.noreply.github.com", "12345+carol-x@users.noreply.github.com"),
            "b.sql": ("pre-commit-ci@example.com", "Dana Name"),
            "c.sql": ("7+bob@users.noreply.github.com",),
        },
        authors=frozenset({"bob"}),
    )
    assert history_holder("a.sql", history) == PersonRef("carol-x", "login")
    assert history_holder("b.sql", history) is None  # a bare name is nobody GitHub can find
    assert history_holder("c.sql", history) is None  # the author under their noreply address
    assert history_holder(None, history) is None and history_holder("a.sql", None) is None
