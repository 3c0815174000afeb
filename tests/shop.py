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
