"""The issue-3 acceptance project ``tests/data/dbt/shop``: its files, and edits to them.

Commerce Data owns staging and marts (``fct_orders`` is contracted, ``dim_customers`` is
versioned); Growth owns two models reading the marts and two exposures; Finance owns the revenue
dashboard. Tests start from these files and change one thing.
"""

from __future__ import annotations

import re
from pathlib import Path

SHOP = Path(__file__).parent / "data" / "dbt" / "shop"


def shop_files() -> dict[str, str]:
    """Every file of the shop project, by repository-relative path."""
    return {p.relative_to(SHOP).as_posix(): p.read_text() for p in sorted(SHOP.rglob("*")) if p.is_file()}


def without_line(text: str, pattern: str) -> str:
    """``text`` with the one line matching ``pattern`` removed (fails loudly when absent)."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert len(hits) == 1, f"{pattern!r} matched {len(hits)} lines"
    del lines[hits[0]]
    return "".join(lines)


def drop_discounts(files: dict[str, str]) -> dict[str, str]:
    """fct_revenue stops producing ``discounts`` (read only by Growth's channel_mix exposure)."""
    path = "models/marts/fct_revenue.sql"
    return {**files, path: without_line(files[path], r"as discounts")}


def drop_coupon_code(files: dict[str, str]) -> dict[str, str]:
    """fct_orders (contracted) drops ``coupon_code``, which nothing downstream reads."""
    sql, yml = "models/marts/fct_orders.sql", "models/marts/marts.yml"
    new_sql = without_line(files[sql], r"coupon_code")
    new_sql = new_sql.replace("    channel,\n", "    channel\n")
    return {**files, sql: new_sql, yml: without_line(files[yml], r"name: coupon_code")}


def drop_signup_date(files: dict[str, str]) -> dict[str, str]:
    """dim_customers v2 drops ``signup_date``: Growth reads it through two layers of models."""
    path = "models/marts/dim_customers_v2.sql"
    return {**files, path: without_line(files[path], r"signup_date")}


def _replace(files: dict[str, str], path: str, old: str, new: str) -> dict[str, str]:
    assert old in files[path], f"{old!r} not in {path}"
    return {**files, path: files[path].replace(old, new, 1)}


FCT_SQL = "models/marts/fct_orders.sql"
MARTS_YML = "models/marts/marts.yml"


def retype_customer_id(files: dict[str, str]) -> dict[str, str]:
    """The contracted fct_orders serves ``customer_id`` as text instead of an integer."""
    files = _replace(files, FCT_SQL, "cast(customer_id as integer)", "cast(customer_id as varchar)")
    return _replace(
        files, MARTS_YML, "{name: customer_id, data_type: integer}", "{name: customer_id, data_type: varchar}"
    )


def narrow_amount(files: dict[str, str]) -> dict[str, str]:
    """The contracted fct_orders narrows ``amount`` from decimal(18,2) to decimal(10,2)."""
    files = _replace(files, FCT_SQL, "cast(amount as decimal(18, 2))", "cast(amount as decimal(10, 2))")
    return _replace(
        files,
        MARTS_YML,
        '{name: amount, data_type: "decimal(18,2)"}',
        '{name: amount, data_type: "decimal(10,2)"}',
    )


def drop_primary_key(files: dict[str, str]) -> dict[str, str]:
    """fct_orders no longer declares ``order_id`` its primary key."""
    return {**files, MARTS_YML: without_line(files[MARTS_YML], r"- type: primary_key")}


def unenforce_contract(files: dict[str, str]) -> dict[str, str]:
    """fct_orders' contract is no longer enforced."""
    return _replace(files, MARTS_YML, "enforced: true", "enforced: false")


def rename_coupon_code(files: dict[str, str]) -> dict[str, str]:
    """fct_orders renames ``coupon_code`` to ``promo_code`` (same expression and type)."""
    files = _replace(files, FCT_SQL, "    coupon_code\n", "    coupon_code as promo_code\n")
    return _replace(files, MARTS_YML, "{name: coupon_code,", "{name: promo_code,")


CONTRACT_SCENARIOS = {
    "drop_coupon_code": drop_coupon_code,
    "retype_customer_id": retype_customer_id,
    "narrow_amount": narrow_amount,
    "drop_primary_key": drop_primary_key,
    "unenforce_contract": unenforce_contract,
    "rename_coupon_code": rename_coupon_code,
}
"""Edits to the contracted ``fct_orders`` that dbt's ``state:modified`` calls breaking (checked with
dbt-core 1.10 + dbt-duckdb while writing them; ``tests/rules/test_dbt_parity.py`` keeps dbt's own
verdicts for its project)."""
