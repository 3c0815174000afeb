"""Inert Markdown: whatever a name or reason holds, it renders as itself and nothing more."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.markdown import WORD_JOINER, clip, code, mention, mermaid_label, one_line, prose, text
from tests.rendered import render

MARKDOWNISH = st.lists(
    st.one_of(
        st.sampled_from(list("`*_[]()<>!&#|~$\\@:/.-+=> \t\n\r\u2028\x85\x0c") + ["www.", "http://", "@acme/x", "&amp;", "#12"]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
).map("".join)


def visible(seen_text: list[str]) -> str:
    return "".join(seen_text).replace(WORD_JOINER, "")


@settings(max_examples=400, deadline=None)
@given(MARKDOWNISH)
def test_a_code_span_holds_exactly_the_value_whatever_it_contains(value: str) -> None:
    seen = render(f"before {code(value)} after")
    assert seen.code == [one_line(value) or " "]
    assert visible(seen.text) == "before  after"


@settings(max_examples=400, deadline=None)
@given(MARKDOWNISH)
def test_a_code_span_in_a_table_cell_holds_exactly_the_value(value: str) -> None:
    seen = render(f"| a | b |\n|---|---|\n| {code(value, table=True)} | end |\n")
    assert seen.code == [one_line(value) or " "]
    assert seen.text[-1] == "end"


@settings(max_examples=400, deadline=None)
@given(MARKDOWNISH)
def test_text_renders_as_itself_with_no_mention_link_or_html(value: str) -> None:
    for markdown in (f"before {text(value, line_start=False)} after", f"- {text('x' + value)} after"):
        seen = render(markdown)
        assert seen.code == [] and seen.html == [] and seen.links == []
        assert seen.mentions == [] and seen.autolinks == []
    seen = render(f"before {text(value, line_start=False)} after")
    assert visible(seen.text) == f"before {one_line(value).replace(WORD_JOINER, '')} after"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(MARKDOWNISH, MARKDOWNISH.map(lambda v: f"`{v}`")), max_size=5))
def test_a_message_with_code_spans_leaves_nothing_live(pieces: list[str]) -> None:
    seen = render("- " + prose(" ".join(pieces)))
    assert seen.html == [] and seen.links == [] and seen.mentions == [] and seen.autolinks == []


def test_a_name_that_closes_its_span_early_stays_inside_it() -> None:
    seen = render(prose("Column `x` @acme/everyone `y` was removed"))
    assert seen.mentions == []
    assert seen.code == ["x", "y"]
    assert render(code("x` @acme/everyone `y")).code == ["x` @acme/everyone `y"]


def test_only_well_formed_github_names_become_mentions() -> None:
    assert mention("acme/growth") == "@acme/growth"
    assert mention("@gina") == "@gina"
    assert mention("acme/growth team <b>") == "`acme/growth team <b>`"
    assert mention(None, fallback="ops") == "`ops`"


def test_bidirectional_overrides_and_controls_are_shown_not_obeyed() -> None:
    assert one_line("admin\u202e\u2066x\x00") == "admin\ufffd\ufffdx\ufffd"


def test_a_mermaid_label_is_letters_digits_plain_punctuation_and_entities() -> None:
    assert mermaid_label("fct_revenue.v2") == "fct_revenue.v2"
    assert mermaid_label('a"];\nclick') == "a#34;#93;#59;#10;click"


def test_clipping_cuts_at_a_line_end_so_no_code_span_is_left_open() -> None:
    body = "first line\n" + code("@acme/everyone " * 10)
    clipped = clip(body, 40)
    assert clipped == "first line\n…"
    assert render(clipped).mentions == []


def test_a_quoted_name_holding_backticks_is_shown_as_one_code_span() -> None:
    name = "x` @acme/everyone `y"
    seen = render(prose(f"Column `plan_code` is now called `{name}`.", names=("plan_code", name)))
    assert seen.code == ["plan_code", name]
    assert seen.mentions == []
