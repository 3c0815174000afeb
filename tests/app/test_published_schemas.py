"""What the engine records for itself in ``meta`` (contract gaps, drops, renames, YAML places) never
reaches a published contract or the registry: those are read by other teams as the asset's schema."""

from __future__ import annotations

import json

from app.workflow.contracts import schema_of
from rules.build import build_snapshot
from rules.config import parse_config
from rules.model import NOT_PRODUCED, PRODUCED_EXTRA, PRODUCED_TYPE, PROPERTIES_AT, Snapshot
from rules.registry_rows import snapshot_rows
from rules.sources import DictSource

ENGINE_KEYS = (NOT_PRODUCED, PRODUCED_EXTRA, PRODUCED_TYPE, PROPERTIES_AT, "dropped_columns", "renamed_from")

FILES = {
    ".tessera.yml": "sql: {paths: ['ddl/**/*.sql'], dialect: postgres}\ndbt: {dialect: postgres}\n",
    "ddl/001.sql": "create table public.accounts (id integer, plan text);\n",
    "ddl/002.sql": "alter table public.accounts drop column plan;\nalter table public.accounts add column plan int;\n"
    "alter table public.accounts rename to customers;\n",
    "dbt_project.yml": "name: shop\nconfig-version: 2\n",
    "models/fct_orders.sql": "select 1 as order_id, 'eu' as region, 2.5 as amount\n",
    "models/fct_orders.yml": "version: 2\nmodels:\n  - name: fct_orders\n    config: {contract: {enforced: true}}\n"
    "    columns:\n      - {name: order_id, data_type: integer}\n      - {name: amount, data_type: text}\n"
    "      - {name: missing, data_type: integer}\n",
}


def _snapshot() -> Snapshot:
    config = parse_config(FILES[".tessera.yml"])
    return build_snapshot(DictSource(FILES), config)


def test_the_snapshot_really_carries_engine_meta_that_must_stay_inside() -> None:
    snap = _snapshot()
    text = json.dumps([{**a.meta, "columns": [c.meta for c in a.columns]} for a in snap.assets.values()], default=str)
    assert sum(key in text for key in ENGINE_KEYS) >= 4, text


def test_published_contract_schemas_and_registry_rows_hold_no_engine_meta() -> None:
    snap = _snapshot()
    published = json.dumps([schema_of(a) for a in snap.assets.values()], default=str)
    rows = snapshot_rows(snap, parse_config(FILES[".tessera.yml"]))
    registry = json.dumps([r.__dict__ for r in rows.assets], default=str)
    for key in ENGINE_KEYS:
        assert key not in published
        assert key not in registry
    assert "fct_orders" in published and "public.customers" in registry
