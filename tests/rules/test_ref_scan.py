"""The DAG is read from every model's raw SQL with a regex; the fast scan must find exactly what
the plain ``\\b``-anchored pattern finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.dbt_project import _REF_RE, _REF_SCAN, _SOURCE_RE, _SOURCE_SCAN, _at_word_starts

PIECES = ["ref(", "source(", "'a'", '"b"', ", ", "x", "_", "é", " ", "\n", ")", "{{ ", " }}", "v=2", "ref('c')",
          "source('s', 't')", "xref('d')", "_source('s','u')", "ref('ref('e')')", "(", "'"]


def _spans(matches: object) -> list[tuple[tuple[int, int], tuple[str | None, ...]]]:
    return [(m.span(), m.groups()) for m in matches]  # type: ignore[attr-defined]


def test_refs_glued_to_a_word_are_not_refs() -> None:
    text = "select * from {{ ref('a') }} join {{ xref('b') }} join {{ source('s','t') }} join my_source('s','u')"
    assert [m.group(2) for m in _at_word_starts(_REF_SCAN, text)] == ["a"]
    assert [m.group(4) for m in _at_word_starts(_SOURCE_SCAN, text)] == ["t"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_the_fast_scan_finds_what_the_anchored_pattern_finds(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _spans(_at_word_starts(_REF_SCAN, text)) == _spans(_REF_RE.finditer(text))
    assert _spans(_at_word_starts(_SOURCE_SCAN, text)) == _spans(_SOURCE_RE.finditer(text))
