"""Reading dbt manifests: the fields Tessera needs, leniently, from v10 to v12."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rules.dbt_manifest import load_manifest, manifest_version

SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "dbt"


def manifest(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
            "adapter_type": "snowflake",
            "project_name": "shop",
        },
        "nodes": {},
        "sources": {},
        "exposures": {},
        "groups": {},
        "disabled": {},
    }
    base.update(parts)
    return base


def model(name: str, **fields: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "resource_type": "model",
        "name": name,
        "package_name": "shop",
        "original_file_path": f"models/{name}.sql",
        "raw_code": f"select * from {{{{ ref('x') }}}} -- {name}",
        "compiled_code": f'select * from "db"."main"."x" -- {name}',
        "relation_name": f'"db"."main"."{name}"',
        "config": {"materialized": "table", "enabled": True, "meta": {}},
        "columns": {},
        "depends_on": {"nodes": []},
        "checksum": {"name": "sha256", "checksum": name},
    }
    node.update(fields)
    return node


REVENUE = model(
    "fct_revenue",
    access="public",
    group="finance",
    contract={"enforced": True, "alias_types": True},
    config={
        "materialized": "incremental",
        "contract": {"enforced": True},
        "unique_key": "order_id",
        "meta": {"tessera": {"compatibility": "full"}},
    },
    columns={
        "order_id": {"name": "order_id", "data_type": "number", "constraints": [{"type": "not_null"}]},
        "plan_code": {"name": "plan_code", "data_type": "varchar", "description": "The plan"},
    },
    constraints=[{"type": "primary_key", "columns": ["order_id"]}],
    depends_on={"nodes": ["model.shop.stg_orders", "source.shop.raw.orders"]},
)


def test_models_become_assets_with_contract_access_group_and_typed_columns() -> None:
    data = manifest(
        nodes={"model.shop.fct_revenue": REVENUE, "model.shop.stg_orders": model("stg_orders")},
        sources={
            "source.shop.raw.orders": {
                "resource_type": "source",
                "name": "orders",
                "source_name": "raw",
                "original_file_path": "models/src.yml",
                "columns": {},
            }
        },
        groups={
            "group.shop.finance": {"name": "finance", "owner": {"name": "Finance", "email": "fin@shop.io"}}
        },
    )
    snapshot = load_manifest(data, project_dir="analytics")
    fct = snapshot.assets["fct_revenue"]
    assert fct.path == "analytics/models/fct_revenue.sql"
    assert fct.sql == 'select * from "db"."main"."x" -- fct_revenue'  # compiled code preferred
    assert fct.relation == '"db"."main"."fct_revenue"'
    assert (fct.contract_enforced, fct.access, fct.group, fct.materialized) == (
        True,
        "public",
        "finance",
        "incremental",
    )
    assert fct.owner == "fin@shop.io"  # the group's owner
    assert fct.compatibility == "full"
    assert fct.unique_key == ("order_id",)
    assert fct.constraints == ("primary_key(order_id)",)
    assert fct.depends_on == ("stg_orders", "raw.orders")
    assert fct.dialect == "snowflake"
    order_id = fct.column("order_id")
    assert order_id is not None and order_id.declared_type and order_id.nullable is False
    assert order_id.type == "DECIMAL(38, 0)"  # snowflake NUMBER
    assert snapshot.assets["raw.orders"].kind == "source"
    assert snapshot.problems == []


def test_generic_tests_fold_into_their_columns_constraints() -> None:
    tests = {
        "test.shop.not_null_stg_orders_id": {
            "resource_type": "test",
            "attached_node": "model.shop.stg_orders",
            "column_name": "id",
            "test_metadata": {
                "name": "not_null",
                "kwargs": {"column_name": "id", "model": "{{ ref('stg_orders') }}"},
            },
        },
        "test.shop.accepted_values_stg_orders_status": {
            "resource_type": "test",
            "attached_node": "model.shop.stg_orders",
            "column_name": "status",
            "test_metadata": {"name": "accepted_values", "kwargs": {"values": ["b", "a"]}},
        },
    }
    stg = model("stg_orders", columns={"id": {"name": "id"}, "status": {"name": "status"}})
    snapshot = load_manifest(manifest(nodes={"model.shop.stg_orders": stg, **tests}))
    asset = snapshot.assets["stg_orders"]
    assert asset.column("id").constraints == ("not_null",)  # type: ignore[union-attr]
    assert asset.column("id").nullable is False  # type: ignore[union-attr]
    assert asset.column("status").constraints == ("accepted_values:a,b",)  # type: ignore[union-attr]
    assert "test.shop.not_null_stg_orders_id" not in snapshot.assets


def test_versions_are_named_name_dot_v_and_keep_latest_and_deprecation() -> None:
    v1 = model("dim", version=1, latest_version=2, deprecation_date="2027-01-31T00:00:00+00:00")
    v2 = model("dim", version=2, latest_version=2)
    snapshot = load_manifest(manifest(nodes={"model.shop.dim.v1": v1, "model.shop.dim.v2": v2}))
    assert snapshot.assets["dim.v1"].deprecation_date == "2027-01-31"
    assert snapshot.assets["dim.v2"].latest_version == "2"


def test_exposures_resolve_their_nodes_and_owner() -> None:
    exposure = {
        "name": "revenue_dashboard",
        "type": "dashboard",
        "owner": {"name": "Growth", "email": "growth@shop.io"},
        "depends_on": {"nodes": ["model.shop.fct_revenue"]},
        "config": {"meta": {"tessera": {"owner": "@shop/growth", "columns": {"fct_revenue": ["plan_code"]}}}},
        "original_file_path": "models/exposures.yml",
    }
    data = manifest(
        nodes={"model.shop.fct_revenue": REVENUE}, exposures={"exposure.shop.revenue_dashboard": exposure}
    )
    found = load_manifest(data).exposures["revenue_dashboard"]
    assert found.depends_on == ("fct_revenue",)
    assert found.owner == "@shop/growth"
    assert found.owner_email == "growth@shop.io"
    assert found.columns == {"fct_revenue": ("plan_code",)}


def test_disabled_models_are_kept_as_disabled_assets() -> None:
    data = manifest(disabled={"model.shop.old": [model("old", config={"enabled": False})]})
    assert load_manifest(data).assets["old"].enabled is False


def test_real_world_deviations_do_not_raise() -> None:
    odd = model(
        "odd", columns=None, config=None, depends_on=None, checksum=None, compiled_code=None, tags=None
    )
    data = manifest(
        nodes={"model.shop.odd": odd, "weird": "not a node", "model.shop.bad": {"resource_type": "model"}}
    )
    data["groups"] = None
    data["exposures"] = {"e": {"name": "e", "depends_on": None, "owner": None}}
    snapshot = load_manifest(data)
    assert snapshot.assets["odd"].sql == "select * from {{ ref('x') }} -- odd"  # raw code without compiled
    assert snapshot.exposures["e"].depends_on == ()
    assert "" not in snapshot.assets
    assert [p.message for p in snapshot.problems] == ["node model.shop.bad has no name; skipped"]
    assert load_manifest([]).problems  # type: ignore[arg-type]


def test_the_schema_version_is_read_from_the_metadata() -> None:
    assert manifest_version(manifest()) == 12
    assert (
        manifest_version(
            {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v10.json"}}
        )
        == 10
    )
    assert manifest_version({}) is None


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared fixtures are not present")
@pytest.mark.parametrize(
    "folder",
    sorted(p.parent.name for p in SHARED.glob("*/manifest.json")) if SHARED.is_dir() else [],
)
def test_every_real_manifest_loads_with_assets_columns_and_no_problems(folder: str) -> None:
    data = json.loads((SHARED / folder / "manifest.json").read_text())
    snapshot = load_manifest(data)
    models = [a for a in snapshot.assets.values() if a.kind == "model"]
    assert models and sum(len(a.columns) for a in snapshot.assets.values()) > 0
    assert snapshot.problems == []
    assert all(a.sql for a in models if a.enabled)
    for exposure in snapshot.exposures.values():
        assert exposure.depends_on and all(d in snapshot.assets for d in exposure.depends_on), exposure.name


def test_the_semantic_layer_of_a_manifest_reads_the_columns_its_members_name() -> None:
    semantic_model = {
        "name": "orders",
        "model": "ref('fct_revenue')",
        "original_file_path": "models/semantic.yml",
        "config": {"meta": {"owner": "growth"}},
        "entities": [{"name": "order", "type": "primary", "expr": "order_id"}],
        "dimensions": [{"name": "plan", "type": "categorical", "expr": "plan_code"}],
        "measures": [{"name": "order_total", "agg": "sum", "expr": "amount * 1.0"}],
    }
    metric = {
        "name": "revenue",
        "type": "simple",
        "type_params": {"measure": {"name": "order_total", "filter": None}},
        "filter": {"where_filters": [{"where_sql_template": "{{ Dimension('order__plan') }} = 'pro'"}]},
        "group": "finance",
        "original_file_path": "models/semantic.yml",
    }
    board = {
        "name": "revenue_board",
        "type": "dashboard",
        "owner": {"name": "Sales"},
        "depends_on": {"nodes": ["metric.shop.revenue"]},
    }
    data = manifest(
        nodes={"model.shop.fct_revenue": REVENUE},
        semantic_models={"semantic_model.shop.orders": semantic_model},
        metrics={"metric.shop.revenue": metric},
        exposures={"exposure.shop.revenue_board": board},
    )
    exposures = load_manifest(data).exposures
    orders = exposures["semantic_model.orders"]
    assert (orders.depends_on, orders.owner) == (("fct_revenue",), "growth")
    assert orders.columns == {"fct_revenue": ("order_id", "plan_code", "amount")}
    assert exposures["metric.revenue"].columns == {"fct_revenue": ("amount", "plan_code")}
    assert exposures["revenue_board"].depends_on == ("fct_revenue",)
    assert exposures["revenue_board"].columns == {"fct_revenue": ("amount", "plan_code")}
