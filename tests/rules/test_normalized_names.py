"""Schema keys are normalised without sqlglot's identifier parse when a name is plain; they must
come out as ``normalize_name`` gives them, in every dialect, keywords included."""

from __future__ import annotations

import pytest
from sqlglot.schema import normalize_name
from sqlglot.tokens import Tokenizer

from rules.infer import _normalized_name

NAMES = ["id", "Customer_ID", "ORDERS", "_loaded_at", "a1", "x$y", "my col", "date", "select", "Status"] + sorted(
    k for k in Tokenizer.KEYWORDS if k.replace("_", "").isalnum()
)[:200]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake", "bigquery", "athena", "databricks", "tsql"])
def test_a_name_is_normalised_as_sqlglot_normalises_it(dialect: str) -> None:
    for is_table in (False, True):
        for name in NAMES:
            assert _normalized_name(name, dialect, is_table) == normalize_name(name, dialect=dialect, is_table=is_table).name
