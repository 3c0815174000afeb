"""Readers nobody knows: the words a held or passed change to a published relation gets (headline,
body, JSON), the configuration key, and the fingerprint an ack is bound to."""

from __future__ import annotations

import datetime
import json

from rules.analyze import analyze
from rules.config import parse_config
from rules.model import Analysis
from rules.report import to_json, to_markdown
from rules.sources import DictSource

PROJECT = 'name: shop\nversion: "1.0"\nconfig-version: 2\nmodel-paths: ["models"]\n'
MART = "select id as order_id, customer_id, plan_code, amount from raw.orders\n"


def _files(mart: str = MART, *, name: str = "fct_orders", config: str = "dbt: {dialect: snowflake}\n") -> dict[str, str]:
    return {"dbt_project.yml": PROJECT, f"models/{name}.sql": mart, ".tessera.yml": config}


def _run(base: dict[str, str], head: dict[str, str]) -> Analysis:
    changed = sorted(p for p in set(base) | set(head) if base.get(p) != head.get(p))
    return analyze(
        DictSource(base), DictSource(head), base_rev="b" * 40, head_rev="h" * 40,
        config=parse_config(base.get(".tessera.yml")), changed_paths=changed, today=datetime.date(2026, 1, 1),
    )


def _drop(mart: str = MART) -> str:
    return mart.replace(" plan_code,", "")


def test_the_json_names_the_unknown_readers_and_why_the_fallback_holds() -> None:
    data = json.loads(to_json(_run(_files(), _files(_drop()))))
    assert data["status"] == "needs_ack"
    [need] = data["required_acks"]
    assert (need["team"], need["fallback"], need["reason"]) == ("maintainers", True, "unknown_readers")
    assert [(i["consumer"], i["consumer_type"], i["team"], i["columns"]) for i in data["impacts"]] == [
        ("fct_orders", "unknown", None, ["plan_code"])
    ]
    assert "unread" not in data


def test_warn_never_says_no_other_team_reads_what_changed() -> None:
    config = "dbt: {dialect: snowflake}\non_unknown_readers: warn\n"
    analysis = _run(_files(config=config), _files(_drop(), config=config))
    assert analysis.status == "clear" and analysis.required_acks == ()
    body = to_markdown(analysis)
    headline = body.splitlines()[1]
    assert headline.startswith("## ⚠️") and "readers of `fct_orders` unknown: held for nobody" in headline
    assert "no other team reads" not in body
    assert "nobody was asked to confirm that nobody outside the repository depends on it" in body
    assert not [e for e in analysis.errors if "fct_orders" in e.message]  # not an "unowned consumer" line


def test_a_bad_on_unknown_readers_value_is_a_clear_problem_and_the_default_holds() -> None:
    config = parse_config("on_unknown_readers: maybe\n")
    assert config.on_unknown_readers == "block"
    assert config.problems == ("on_unknown_readers: 'maybe' is not one of block, warn; using 'block'",)


def test_the_fingerprint_stays_while_the_findings_do_and_changes_with_them() -> None:
    first = _run(_files(), _files(_drop()))
    again = _run(_files(), {**_files(_drop()), "README.md": "docs\n"})
    other = _run(_files(), _files(_drop().replace(" amount,", "")))
    assert first.required_acks[0].fingerprint == again.required_acks[0].fingerprint
    other_mart = _run(_files(), _files(_drop(MART.replace("customer_id, ", ""))))
    assert first.required_acks[0].fingerprint != other_mart.required_acks[0].fingerprint
    assert other.required_acks  # still held



def test_the_comment_says_how_to_mark_a_building_block_so_it_is_never_held_again() -> None:
    body = to_markdown(_run(_files(), _files(_drop())))
    assert "declare it `access: private` or name its folder or prefix under `internal:`" in body
    config = "dbt: {dialect: snowflake}\ninternal: {prefixes: [fct_]}\n"
    marked = _run(_files(config=config), _files(_drop(), config=config))
    assert marked.status == "clear" and marked.required_acks == ()
    assert "Readers outside the repository" not in to_markdown(marked)


def test_a_project_in_a_folder_named_like_a_layer_still_publishes_its_marts() -> None:
    def nested(files: dict[str, str]) -> dict[str, str]:
        return {(p if p == ".tessera.yml" else f"staging/{p}"): text for p, text in files.items()}

    data = json.loads(to_json(_run(nested(_files()), nested(_files(_drop())))))
    assert [(need["team"], need["reason"]) for need in data["required_acks"]] == [("maintainers", "unknown_readers")]
    # while a folder below its models folder still marks a building block
    inner = json.loads(to_json(_run(nested(_files(name="staging/stg_x")), nested(_files(_drop(), name="staging/stg_x")))))
    assert inner["required_acks"] == []
