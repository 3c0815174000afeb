"""The README stays true: its rule table is the catalog, its Quick start is what CI runs."""

from pathlib import Path

from rules.catalog import RULES, markdown_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_rule_table_is_the_catalog():
    assert markdown_table() in README


def test_every_rule_id_appears_in_the_readme():
    missing = [rule.id for rule in RULES if f"| {rule.id} |" not in README]
    assert missing == []


def test_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pytest -n 2" in README
    assert ".venv/bin/pytest -n 2" in ci
    assert "pip install -e '.[test]'" in README and "pip install --quiet -e '.[test]'" in ci


def test_readme_lists_every_github_endpoint_the_app_calls():
    from app.setup import ENDPOINT_PERMISSIONS

    missing = [f"{e.method} {e.path}" for e in ENDPOINT_PERMISSIONS if f"`{e.method} {e.path}`" not in README]
    assert missing == []


def test_readme_alert_table_is_the_list_trends_uses():
    from app.audits import alert_rules_table

    assert alert_rules_table() in README
