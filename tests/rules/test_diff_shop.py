"""The diff's findings on the shop project as a producer meets them: said once, where they happen.

Each test makes one edit a real producer makes to ``tests/data/dbt/shop`` and runs the whole
analysis, so the wording, the line and the teams asked are the ones ``tessera check`` prints.
"""

from __future__ import annotations

import datetime

from rules.analyze import analyze
from rules.config import parse_config
from rules.model import Analysis
from rules.sources import DictSource
from tests.shop import shop_files, without_line

TODAY = datetime.date(2026, 11, 25)
FCT_ORDERS = "models/marts/fct_orders.sql"
MARTS_YML = "models/marts/marts.yml"


def run(base: dict[str, str], head: dict[str, str]) -> Analysis:
    changed = sorted(p for p in set(base) | set(head) if base.get(p) != head.get(p))
    return analyze(
        DictSource(base), DictSource(head), base_rev="base", head_rev="head",
        config=parse_config(base.get(".tessera.yml")), changed_paths=changed, today=TODAY,
    )


def line_of(text: str, needle: str) -> int:
    (line,) = [i for i, row in enumerate(text.splitlines(), start=1) if needle in row]
    return line


def test_sql_dropping_a_column_its_enforced_contract_still_declares_is_a_breaking_removal() -> None:
    files = shop_files()
    head = {**files, FCT_ORDERS: without_line(files[FCT_ORDERS], r"^    channel,$")}
    result = run(files, head)
    (change,) = [c for c in result.changes if c.severity != "info"]
    assert (change.rule, change.severity, change.asset, change.column) == (
        "COLUMN_REMOVED", "breaking", "fct_orders", "channel"
    )
    assert change.message == (
        "The SQL of `fct_orders` no longer produces `channel`, which its enforced contract declares: "
        "`dbt build` fails on this contract. Dropping `channel` from the contract too would break "
        "model `fct_revenue`, which reads it (select, group by)."
    )
    # where `channel` used to be: the line of the column before it, in the head file
    assert (change.path, change.line) == (FCT_ORDERS, line_of(head[FCT_ORDERS], "as net_amount"))
    # and the public fct_orders' readers outside the repository, held for the maintainers
    assert {a.team for a in result.required_acks} == {"finance", "growth", "maintainers"}


def test_a_column_dropped_from_sql_and_contract_names_the_model_that_still_reads_it_once() -> None:
    files = shop_files()
    head = {
        **files,
        FCT_ORDERS: without_line(files[FCT_ORDERS], r"^    channel,$"),
        MARTS_YML: without_line(files[MARTS_YML], r"name: channel"),
    }
    result = run(files, head)
    said = [c for c in result.changes if c.severity != "info"]
    assert [(c.rule, c.asset, c.column) for c in said] == [("COLUMN_REMOVED", "fct_orders", "channel")]
    assert said[0].message == (
        "Column `channel` was removed from `fct_orders`. Model `fct_revenue` still reads it "
        "(select, group by) and will fail to build unless it changes too."
    )
    assert said[0].line == line_of(head[FCT_ORDERS], "as net_amount")
    assert not any("UNKNOWN" in (c.after or "") for c in result.changes)


def test_a_staging_model_turned_ephemeral_asks_only_its_direct_readers_not_every_team_downstream() -> None:
    files = shop_files()
    path = "models/staging/stg_orders.sql"
    head = {**files, path: "{{ config(materialized='ephemeral') }}\n" + files[path]}
    result = run(files, head)
    said = [(c.rule, c.severity, c.asset) for c in result.changes if c.severity != "info"]
    assert said == [("MATERIALIZATION_CHANGED", "breaking", "stg_orders")]
    # fct_orders refs it (dbt inlines an ephemeral model), and nothing reads the view directly
    assert result.required_acks == ()
    assert result.status == "clear"


def test_a_mart_turned_ephemeral_asks_the_teams_whose_dashboards_read_it() -> None:
    files = shop_files()
    path = "models/marts/fct_revenue.sql"
    head = {**files, path: "{{ config(materialized='ephemeral') }}\n" + files[path]}
    result = run(files, head)
    assert {a.team for a in result.required_acks} == {"finance", "growth"}


def test_a_type_change_stops_at_a_contracted_model_that_casts_it_back() -> None:
    files = shop_files()
    path = "models/staging/stg_orders.sql"
    head = {**files, path: files[path].replace("    customer_id,\n", "    cast(customer_id as varchar) as customer_id,\n")}
    result = run(files, head)
    said = [(c.rule, c.severity, c.asset, c.column) for c in result.changes if c.severity != "info"]
    assert said == [("COLUMN_TYPE_CHANGED", "breaking", "stg_orders", "customer_id")]
    # fct_orders casts customer_id back to the integer its contract declares: Growth reads an integer
    assert result.required_acks == ()


def test_a_type_change_a_reader_passes_on_still_reaches_the_team_behind_it() -> None:
    files = shop_files()
    path = "models/staging/stg_customers.sql"
    head = {**files, path: files[path].replace("    id as customer_id,", "    cast(id as varchar) as customer_id,")}
    result = run(files, head)
    # dim_customers selects customer_id as it comes, so Growth's models join on text now; its two
    # public versions' readers outside the repository are held for the maintainers
    assert [a.team for a in result.required_acks] == ["growth", "maintainers"]
