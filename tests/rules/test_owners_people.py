"""Owners who are people, and consumers nobody owns: who is asked, and what the check JSON says."""

from __future__ import annotations

from rules.config import parse_config
from rules.model import MAINTAINERS, RequiredAck
from rules.owners import PersonRef, TeamRef, as_person, settle_people
from tests.rules.test_analyze import run
from tests.shop import drop_discounts, shop_files, without_line

EXPOSURES = "models/marts/exposures.yml"


def _channel_mix_owned_by(files: dict[str, str], owner_lines: str) -> dict[str, str]:
    """The shop with ``channel_mix`` (reads ``discounts``) owned as ``owner_lines`` say."""
    text = without_line(files[EXPOSURES], r"owner: growth")
    text = text.replace("    owner:\n      name: Growth Analytics\n", owner_lines)
    assert text != files[EXPOSURES]
    return {**files, EXPOSURES: text}


def test_an_exposure_owned_by_an_email_of_no_team_asks_that_person() -> None:
    files = _channel_mix_owned_by(shop_files(), "    owner:\n      email: Dana@Shop.test\n")
    result = run(files, drop_discounts(files))
    assert result.status == "needs_ack"
    (ack,) = result.required_acks
    assert (ack.kind, ack.user, ack.fallback) == ("user", "dana@shop.test", False)
    assert result.to_dict()["required_acks"] == [
        {"kind": "user", "user": "dana@shop.test", "reasons": list(ack.reasons)}
    ]
    [impact] = [i for i in result.to_dict()["impacts"] if i["consumer"] == "channel_mix"]
    assert impact["team"] is None and impact["user"] == "dana@shop.test"


def test_a_codeowners_user_owning_the_exposure_file_is_asked_by_login() -> None:
    files = _channel_mix_owned_by(shop_files(), "")
    files["CODEOWNERS"] = "models/marts/exposures.yml @gina-g\n"
    result = run(files, drop_discounts(files))
    (ack,) = result.required_acks
    assert (ack.kind, ack.user, ack.login) == ("user", "gina-g", "gina-g")


def test_an_email_beats_a_name_when_both_describe_the_owner() -> None:
    files = _channel_mix_owned_by(shop_files(), "    owner:\n      name: Dana\n      email: dana@shop.test\n")
    (ack,) = run(files, drop_discounts(files)).required_acks
    assert ack.user == "dana@shop.test"


def test_a_consumer_with_no_owner_is_held_for_the_maintainers() -> None:
    files = _channel_mix_owned_by(shop_files(), "")
    result = run(files, drop_discounts(files))
    assert result.status == "needs_ack"
    (ack,) = result.required_acks
    assert (ack.team, ack.kind, ack.fallback, ack.maintainers) == (MAINTAINERS, "team", True, True)
    assert "exposure channel_mix" in ack.reasons[0]
    assert result.to_dict()["required_acks"][0]["fallback"] is True
    (error,) = [e for e in result.errors if "channel_mix" in e.message]
    assert error.path == EXPOSURES and "held for the fallback" in error.message


def test_a_consumer_with_no_owner_is_held_for_the_configured_fallback_team() -> None:
    files = _channel_mix_owned_by(shop_files(), "")
    files[".tessera.yml"] += "fallback: finance\n"
    (ack,) = run(files, drop_discounts(files)).required_acks
    assert (ack.team, ack.github_team, ack.fallback, ack.maintainers) == ("finance", "shop/finance", True, False)


def test_on_unowned_warn_keeps_the_old_note_and_asks_nobody() -> None:
    files = _channel_mix_owned_by(shop_files(), "")
    files[".tessera.yml"] += "on_unowned: warn\n"
    result = run(files, drop_discounts(files))
    assert result.required_acks == () and result.status == "clear"
    (error,) = [e for e in result.errors if "channel_mix" in e.message]
    assert "nobody was asked" in error.message


def test_the_same_person_owning_producer_and_consumer_is_not_asked() -> None:
    files = _channel_mix_owned_by(shop_files(), "")
    files["CODEOWNERS"] = "* @solo\n"
    files[".tessera.yml"] = "dbt:\n  dialect: duckdb\n"
    files["models/groups.yml"] = "groups: []\n"
    result = run(files, drop_discounts(files))
    assert result.required_acks == ()


def test_raw_owners_read_as_people() -> None:
    assert as_person("@gina") == PersonRef("gina", "login")
    assert as_person(" Dana@Shop.test ") == PersonRef("dana@shop.test", "email")
    assert as_person("Growth  Analytics") == PersonRef("Growth Analytics", "name")
    assert as_person("@acme/growth") is None and as_person("") is None


def test_fallback_and_on_unowned_are_read_and_bad_values_named() -> None:
    config = parse_config("teams: {finance: {github: acme/finance}}\nfallback: finance\non_unowned: warn\n")
    assert (config.fallback, config.on_unowned, config.problems) == ("finance", "warn", ())
    bad = parse_config("fallback: nobody\non_unowned: maybe\n")
    assert (bad.fallback, bad.on_unowned) == (None, "block")
    assert any("fallback" in p for p in bad.problems) and any("on_unowned" in p for p in bad.problems)


DANA = RequiredAck("user:dana@x.test", None, ("COLUMN_REMOVED on a.b: read by exposure e",), "f1", "user", "dana@x.test")
NAMED = RequiredAck("user:jo", None, ("COLUMN_REMOVED on a.c: read by exposure f",), "f2", "user", "Jo")


def test_a_person_the_app_found_gets_their_login() -> None:
    (ack,), notes = settle_people([DANA], {"dana@x.test": "dana"}, parse_config(None))
    assert (ack.login, ack.user, ack.fallback, notes) == ("dana", "dana@x.test", False, ())


def test_people_the_app_could_not_find_are_held_together_for_the_maintainers() -> None:
    (ack,), notes = settle_people([DANA, NAMED], {"dana@x.test": None}, parse_config(None))
    assert ack.maintainers and len(ack.reasons) == 2
    assert "no GitHub user" in ack.reasons[0] and notes == ()
    assert ack.fingerprint not in ("f1", "f2")


def test_a_person_who_wrote_the_pull_request_is_held_for_the_fallback_team() -> None:
    config = parse_config("teams: {finance: {github: acme/finance}}\nfallback: finance\n")
    (ack,), _ = settle_people([DANA], {"dana@x.test": "Dana"}, config, author="dana")
    assert (ack.team, ack.github_team, ack.fallback) == ("finance", "acme/finance", True)
    assert "wrote this pull request" in ack.reasons[0]


def test_with_on_unowned_warn_a_person_not_found_is_only_noted() -> None:
    required, notes = settle_people([DANA], {}, parse_config("on_unowned: warn\n"))
    assert required == () and "dana@x.test" in notes[0]


def test_a_team_keeps_its_place_beside_people() -> None:
    team = RequiredAck("growth", "acme/growth", ("r",), "f0")
    required, _ = settle_people([team, DANA], {"dana@x.test": "dana"}, parse_config(None))
    assert [r.team for r in required] == ["growth", "user:dana@x.test"]
    assert TeamRef("growth").key == "growth"


def test_a_person_the_app_cannot_find_is_held_for_the_codeowners_of_the_consumers_file() -> None:
    files = _channel_mix_owned_by(shop_files(), "    owner:\n      email: gone@shop.test\n")
    files["CODEOWNERS"] = "models/marts/exposures.yml @lead\n"
    (ack,) = run(files, drop_discounts(files)).required_acks
    assert (ack.user, ack.stand_in) == ("gone@shop.test", "@lead")
    (held,), _ = settle_people([ack], {"gone@shop.test": None}, parse_config(files[".tessera.yml"]))
    assert (held.kind, held.login, held.fallback) == ("user", "lead", True)
    assert "gone@shop.test has no GitHub user" in held.reasons[0]


def test_the_fallback_team_comes_before_the_codeowners_for_a_person_not_found() -> None:
    files = _channel_mix_owned_by(shop_files(), "    owner:\n      email: gone@shop.test\n")
    files["CODEOWNERS"] = "models/marts/exposures.yml @lead\n"
    files[".tessera.yml"] += "fallback: finance\n"
    config = parse_config(files[".tessera.yml"])
    (ack,) = run(files, drop_discounts(files)).required_acks
    (held,), _ = settle_people([ack], {}, config)
    assert (held.team, held.github_team, held.fallback) == ("finance", "shop/finance", True)


def test_an_exposures_own_owner_comes_before_a_catch_all_codeowners_team_of_the_producer() -> None:
    """A ``*`` CODEOWNERS line names who maintains the YAML (the producing team here), not who
    reads the dashboard; letting it win would make the exposure the producer's own and ask no one."""
    files = _channel_mix_owned_by(shop_files(), "    owner:\n      email: dana@shop.test\n")
    files["CODEOWNERS"] = "* @shop/commerce-data\n"
    result = run(files, drop_discounts(files))
    assert result.status == "needs_ack"
    [impact] = [i for i in result.to_dict()["impacts"] if i["consumer"] == "channel_mix"]
    assert impact["user"] == "dana@shop.test"
    assert "user:dana@shop.test" in {ack.team for ack in result.required_acks}


def test_an_exposure_with_no_owner_of_its_own_still_falls_back_to_codeowners() -> None:
    files = _channel_mix_owned_by(shop_files(), "")
    files["CODEOWNERS"] = "* @shop/finance\n"
    result = run(files, drop_discounts(files))
    [impact] = [i for i in result.to_dict()["impacts"] if i["consumer"] == "channel_mix"]
    assert impact["team"] == "finance"
