"""The slash-command parser: only at the start of a line, verbs, teams, dates, reasons, typos."""

from __future__ import annotations

import datetime as dt
import time

from app.workflow.commands import Command, help_text, parse_commands, select_teams, split_block

TEAMS = {"growth": "acme/growth", "finance": "acme/finance-data", "ops": None}


def test_ack_at_the_start_of_a_line_is_a_command() -> None:
    [command] = parse_commands("/tessera ack")
    assert command.verb == "ack" and command.words == () and command.problem is None


def test_ack_in_the_middle_of_a_sentence_is_not_a_command() -> None:
    assert parse_commands("I think we should /tessera ack this later") == []


def test_quoted_and_fenced_commands_are_ignored() -> None:
    body = "> /tessera ack\n\n```\n/tessera ack\n```\nthanks"
    assert parse_commands(body) == []


def test_several_commands_in_one_comment_are_read_in_order() -> None:
    body = "Looks fine for us.\n/tessera ack growth\n  /tessera status\n"
    assert [c.verb for c in parse_commands(body)] == ["ack", "status"]
    assert parse_commands(body)[0].words == ("growth",)


def test_verbs_are_case_insensitive_and_a_bare_prefix_asks_for_help() -> None:
    assert parse_commands("/Tessera ACK")[0].verb == "ack"
    assert parse_commands("/tessera")[0].verb == "help"


def test_migrating_reads_the_deadline_and_keeps_the_teams() -> None:
    [command] = parse_commands("/tessera migrating growth by 2026-12-31")
    assert command.words == ("growth",)
    assert command.deadline == dt.date(2026, 12, 31)
    assert command.problem is None


def test_migrating_with_a_malformed_or_impossible_date_says_how_to_write_it() -> None:
    assert "YYYY-MM-DD" in (parse_commands("/tessera migrating by next friday")[0].problem or "")
    assert "not a real date" in (parse_commands("/tessera migrating by 2026-02-30")[0].problem or "")


def test_override_without_a_reason_is_refused_at_parse_time() -> None:
    assert "reason" in (parse_commands("/tessera override")[0].problem or "")
    assert parse_commands("/tessera override hotfix for the outage")[0].text == "hotfix for the outage"


def test_a_mistyped_verb_gets_a_suggestion() -> None:
    [command] = parse_commands("/tessera akc")
    assert command.problem and command.suggestion == "ack"
    assert "/tessera ack" in command.problem


def test_a_mistyped_prefix_is_answered_not_ignored() -> None:
    [command] = parse_commands("/tesera ack")
    assert command.problem and "/tessera" in command.problem
    assert parse_commands("/test this please") == []


def test_team_names_match_slug_github_team_and_mention() -> None:
    found, unknown = select_teams(["@acme/growth", "finance-data", "ops", "marketing"], TEAMS)
    assert found == ["growth", "finance", "ops"]
    assert unknown == ["marketing"]


def test_block_takes_leading_teams_then_the_reason() -> None:
    [command] = parse_commands("/tessera block growth the dashboard breaks on Monday")
    assert split_block(command, TEAMS) == (["growth"], "the dashboard breaks on Monday")
    [command] = parse_commands("/tessera block growth numbers will be wrong")
    assert split_block(command, TEAMS) == (["growth"], "numbers will be wrong")
    [command] = parse_commands("/tessera block")
    assert split_block(command, TEAMS) == ([], "")


def test_help_lists_every_command() -> None:
    text = help_text()
    for verb in ("ack", "migrating", "block", "unblock", "unack", "status", "recheck", "override", "help"):
        assert f"/tessera {verb}" in text


# --- what GitHub renders is what counts -----------------------------------------------------------


def accepted(body: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.verb, c.words) for c in parse_commands(body) if c.problem is None]


def test_unicode_line_separators_do_not_start_a_new_line() -> None:
    # GitHub shows each of these as one line: the command is mid-sentence or inside the quote.
    for separator in ("\u2028", "\u2029", "\x85", "\x0c", "\x0b"):
        assert parse_commands(f"Once the dashboard is fixed{separator}/tessera ack") == []
        assert parse_commands(f"> sam wrote:{separator}/tessera ack growth") == []


def test_a_quote_continued_on_the_next_line_is_still_a_quote() -> None:
    assert parse_commands("> sam said we should\n/tessera ack growth") == []


def test_commands_in_html_comments_and_blocks_do_not_count() -> None:
    assert parse_commands("<!--\n/tessera ack\n-->") == []
    assert parse_commands("Thanks! <!-- hidden\n/tessera ack -->") == []
    assert parse_commands("<div>\n/tessera ack\n</div>") == []


def test_a_backtick_fence_is_not_closed_by_tildes_or_a_shorter_fence() -> None:
    assert parse_commands("```\n~~~\n/tessera ack\n```") == []
    assert parse_commands("````\n```\n/tessera ack\n````") == []
    assert parse_commands("~~~~\n~~~\n/tessera ack\n~~~~\n") == []


def test_indented_code_and_code_spans_do_not_count() -> None:
    assert parse_commands("Try this:\n\n    /tessera ack") == []
    assert parse_commands("`/tessera ack`") == []
    assert parse_commands("Type `x\n/tessera ack` to acknowledge") == []


def test_list_items_headings_and_tables_do_not_count() -> None:
    assert parse_commands("- /tessera ack") == []
    assert parse_commands("# /tessera ack") == []
    assert parse_commands("| a |\n|---|\n/tessera ack") == []


def test_a_command_after_a_soft_or_hard_break_in_a_paragraph_counts() -> None:
    assert accepted("Looks fine.\n/tessera ack growth") == [("ack", ("growth",))]
    assert accepted("Looks fine.  \n/tessera ack growth") == [("ack", ("growth",))]
    assert accepted("Looks fine.\r\n/tessera ack growth") == [("ack", ("growth",))]
    assert accepted("Looks fine.\n\n/tessera ack growth") == [("ack", ("growth",))]


def test_a_look_alike_prefix_is_refused_with_a_reason_not_carried_out() -> None:
    for prefix in ("/teſſera", "／ｔｅｓｓｅｒａ", "/TEſſERA"):
        [command] = parse_commands(f"{prefix} ack growth")
        assert command.problem is not None and "plain ASCII" in command.problem
        assert command.verb != "ack"


def test_a_look_alike_verb_is_refused_with_a_reason_not_carried_out() -> None:
    for verb in ("ａｃｋ", "ac\u212a"):  # full-width, and the Kelvin sign that lower-cases to "k"
        [command] = parse_commands(f"/tessera {verb} growth")
        assert command.verb != "ack"
        assert command.problem is not None and "plain ASCII" in command.problem


def test_a_look_alike_team_name_names_no_team() -> None:
    assert select_teams(["\u212aey"], {"key": None}) == ([], ["\u212aey"])


def test_a_deadline_in_other_digits_is_refused() -> None:
    [command] = parse_commands("/tessera migrating by ２０２６-12-31")
    assert command.deadline is None and command.problem is not None


def test_an_unknown_verb_is_echoed_as_inert_code() -> None:
    [command] = parse_commands("/tessera `x` @acme/everyone")
    assert command.problem is not None
    assert command.problem.startswith("`` `x` `` is not a Tessera command")


def test_a_comment_of_unclosed_brackets_is_read_in_bounded_time_and_still_as_rendered() -> None:
    hostile = "![" * 32_000
    started = time.perf_counter()
    commands = parse_commands(f"/tessera ack growth\n{hostile}\n\n> /tessera ack\n\n```\n/tessera ack\n```")
    assert time.perf_counter() - started < 10  # ~3 s idle before, 15 s on a busy machine
    assert accepted_words(commands) == [("ack", ("growth",))]


def accepted_words(commands: list[Command]) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.verb, c.words) for c in commands if c.problem is None]
