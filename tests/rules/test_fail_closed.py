"""A change cannot hide behind a file Tessera can no longer read (on_unparsed: regressions).

Each attack drops ``discounts`` from ``fct_revenue`` (read by Growth's exposure) *and* makes the
model unreadable to Tessera in a way dbt itself accepts. The drop alone needs Growth's ack; so must
the drop plus the mask.
"""

from __future__ import annotations

import pytest

from rules.dbt_project import MAX_FILE_CHARS, statement_text
from tests.rules.test_analyze import run
from tests.shop import drop_discounts, shop_files

PATH = "models/marts/fct_revenue.sql"


def masked(sql: str, how: str) -> str:
    if how == "nested parentheses":
        return sql.replace("select", "select " + "(" * 500 + "1" + ")" * 500 + " as deep,", 1)
    if how == "ten thousand unions":
        return sql + "\n" + "".join(f"union all select {i}\n" for i in range(10_000))
    if how == "toyaml(graph)":
        return "{% set _t = toyaml(graph) %}\n" + sql
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["nested parentheses", "ten thousand unions", "toyaml(graph)"])
def test_a_drop_hidden_by_making_the_model_unreadable_still_needs_the_readers_ack(how: str) -> None:
    files = shop_files()
    head = drop_discounts(files)
    result = run(files, {**head, PATH: masked(head[PATH], how)})
    assert result.status == "needs_ack"
    assert "growth" in {a.team for a in result.required_acks}
    unparsed = [c for c in result.changes if c.rule == "UNPARSED"]
    assert [(c.severity, c.asset) for c in unparsed] == [("breaking", "fct_revenue")]
    assert "`fct_revenue` can no longer be analysed" in unparsed[0].message


def test_a_model_padded_past_the_size_limit_with_a_comment_is_still_read() -> None:
    files = shop_files()
    head = drop_discounts(files)
    padded = head[PATH] + "\n-- " + "x" * (MAX_FILE_CHARS + 10) + "\n"
    result = run(files, {**head, PATH: padded})
    assert ("COLUMN_REMOVED", "breaking", "discounts") in {(c.rule, c.severity, c.column) for c in result.changes}
    assert not any(c.rule == "UNPARSED" for c in result.changes)
    assert [a.team for a in result.required_acks] == ["growth"]


def test_statement_text_drops_comments_and_blank_runs_but_keeps_strings_and_lines() -> None:
    sql = "select '--not a comment' as a, /* gone\n */ b  {# jinja\n #} -- tail\nfrom t"
    text = statement_text(sql)
    assert "'--not a comment'" in text
    assert "gone" not in text and "jinja" not in text and "tail" not in text
    assert text.count("\n") == sql.count("\n")


def test_on_unparsed_warn_keeps_an_unreadable_model_a_finding_to_review() -> None:
    shop = shop_files()
    files = {**shop, ".tessera.yml": shop[".tessera.yml"] + "on_unparsed: warn\n"}
    head = drop_discounts(files)
    result = run(files, {**head, PATH: masked(head[PATH], "toyaml(graph)")})
    assert [c.severity for c in result.changes if c.rule == "UNPARSED"] == ["review"]
    assert result.status == "clear"


def test_a_model_that_was_already_unreadable_is_not_held_again() -> None:
    files = shop_files()
    base = {**files, PATH: masked(files[PATH], "toyaml(graph)")}
    head = {**base, PATH: base[PATH] + "\n-- still unreadable\n"}
    result = run(base, head)
    assert [c.severity for c in result.changes if c.rule == "UNPARSED"] == ["review"]
    assert result.status == "clear"


def test_a_new_unreadable_model_nobody_reads_asks_no_one() -> None:
    files = shop_files()
    head = {**files, "models/marts/fct_new.sql": "{% set _t = toyaml(graph) %}\nselect 1 as one\n"}
    result = run(files, head)
    assert [c.rule for c in result.changes if c.severity == "breaking"] == ["UNPARSED"]
    assert result.required_acks == ()
    assert result.status == "clear"
