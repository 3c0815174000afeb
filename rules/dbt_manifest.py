"""Read a dbt ``manifest.json`` (v10–v12) into a :class:`Snapshot`.

Real manifests deviate from dbt's published schemas in small ways (fields missing, ``null`` where a
mapping is documented, nodes of kinds Tessera does not know), so every field is read defensively:
a node that cannot be read becomes a :class:`ParseProblem`, never an exception.

Paths: manifest paths are relative to the dbt project; pass ``project_dir`` (the project's folder in
the repository) so assets point at repository files. SQL: ``compiled_code`` is preferred (it names
relations as ``relation_name``, kept in ``Asset.relation`` so ``rules.build`` maps them back to
fqns); without it the raw Jinja is kept and inference will likely mark the columns unknown.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rules.dbt_project import (
    _SNAPSHOT_RE,
    DbtProject,
    ModelFile,
    _as_dict,
    _as_list,
    _columns,
    _model_constraints,
    _owner,
    _plain,
    stable_hash,
)
from rules.dbt_semantic_layer import SemanticLayer, exposure_metric_reads, semantic_layer
from rules.dialect import ADAPTER_DIALECTS
from rules.model import Asset, Exposure, Group, ParseProblem, Snapshot

ASSET_NODES: tuple[str, ...] = ("model", "seed", "snapshot")
"""Node kinds that become assets; tests are folded into their columns' constraints."""


def looks_like_manifest(document: object) -> bool:
    """A dbt manifest is an object with ``nodes`` and ``metadata`` objects; anything else (a
    catalog, run results, a package.json) is the wrong file, said as such, not a finding."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("nodes"), dict)
        and isinstance(document.get("metadata"), dict)
    )


def manifest_version(data: Mapping[str, Any]) -> int | None:
    """The manifest schema version (``.../manifest/v12.json`` → 12), or None when unstated."""
    url = str(_as_dict(data.get("metadata")).get("dbt_schema_version") or "")
    tail = url.rsplit("/v", 1)[-1].split(".", 1)[0]
    return int(tail) if tail.isdigit() else None


def node_fqn(node: Mapping[str, Any]) -> str:
    """The asset name DESIGN.md gives a dbt node: its name, ``name.vN`` for a version."""
    name = str(node.get("name") or "").lower()
    if node.get("resource_type") == "source":
        return f"{str(node.get('source_name') or '').lower()}.{name}"
    version = node.get("version")
    return f"{name}.v{version}" if version not in (None, "") else name


def load_manifest(
    data: Mapping[str, Any], *, project_dir: str | None = None, dialect: str | None = None
) -> Snapshot:
    """Assets (models, seeds, snapshots, sources), exposures and groups of a manifest."""
    snapshot = Snapshot()
    if not isinstance(data, Mapping):
        snapshot.problems.append(
            ParseProblem(_path("manifest.json", project_dir), "a manifest must be a JSON object")
        )
        return snapshot
    version = manifest_version(data)
    where = _path("target/manifest.json", project_dir)
    if version is not None and version < 10:
        snapshot.problems.append(
            ParseProblem(
                where, f"manifest v{version} is older than Tessera reads (v10–v12); reading it anyway"
            )
        )
    metadata = _as_dict(data.get("metadata"))
    dialect = dialect or _dialect_of(metadata.get("adapter_type"))
    root = metadata.get("project_name")
    nodes = _as_dict(data.get("nodes"))
    sources = _as_dict(data.get("sources"))
    fqns: dict[str, str] = {}
    for unique_id, node in [*nodes.items(), *sources.items()]:
        if isinstance(node, Mapping):
            fqns[str(unique_id)] = node_fqn(node)
    tests = _tests_by_column(nodes)

    for group_node in _as_dict(data.get("groups")).values():
        if isinstance(group_node, Mapping) and group_node.get("name"):
            group = _group(group_node)
            snapshot.groups[group.name] = group

    for unique_id, node in nodes.items():
        if not isinstance(node, Mapping) or node.get("resource_type") not in ASSET_NODES:
            continue
        if not node.get("name"):
            snapshot.problems.append(ParseProblem(where, f"node {unique_id} has no name; skipped"))
            continue
        try:
            asset = _node_asset(
                node, fqns, tests.get(str(unique_id), {}), snapshot.groups, project_dir, dialect
            )
        except Exception as exc:  # noqa: BLE001 (one odd node must not lose the rest)
            snapshot.problems.append(ParseProblem(where, f"node {unique_id} could not be read: {exc}"))
            continue
        existing = snapshot.assets.get(asset.fqn)
        if existing is not None and existing.package == root:
            continue  # a package node with the root project's name: the root project wins
        snapshot.assets[asset.fqn] = asset

    for unique_id, entries in _as_dict(data.get("disabled")).items():
        for node in _as_list(entries):
            if not isinstance(node, Mapping) or node.get("resource_type") not in ASSET_NODES:
                continue
            fqn = node_fqn(node)
            if fqn in snapshot.assets:
                continue
            try:
                asset = _node_asset(node, fqns, {}, snapshot.groups, project_dir, dialect)
            except Exception as exc:  # noqa: BLE001
                snapshot.problems.append(
                    ParseProblem(where, f"disabled node {unique_id} could not be read: {exc}")
                )
                continue
            snapshot.assets[fqn] = replace(asset, enabled=False)

    for unique_id, node in sources.items():
        if not isinstance(node, Mapping):
            continue
        try:
            asset = _source_asset(node, tests.get(str(unique_id), {}), project_dir, dialect)
        except Exception as exc:  # noqa: BLE001
            snapshot.problems.append(ParseProblem(where, f"source {unique_id} could not be read: {exc}"))
            continue
        snapshot.assets.setdefault(asset.fqn, asset)

    layer = _semantic_layer(data, snapshot, project_dir, dialect)
    for reader in layer.readers:
        snapshot.exposures[reader.name] = reader
    for node in _as_dict(data.get("exposures")).values():
        if isinstance(node, Mapping) and node.get("name"):
            exposure = _exposure(node, fqns, project_dir, layer)
            snapshot.exposures[exposure.name] = exposure
    return snapshot


def _semantic_layer(
    data: Mapping[str, Any], snapshot: Snapshot, project_dir: str | None, dialect: str | None
) -> SemanticLayer:
    """The manifest's semantic models, metrics and saved queries as readers (as from YAML)."""
    latest = {
        (a.name or fqn).lower(): fqn for fqn, a in snapshot.assets.items()
        if a.version is not None and str(a.version) == str(a.latest_version)
    }

    def ref_fqn(name: str, version: str | None) -> str:
        return f"{name.lower()}.v{version}" if version else latest.get(name.lower(), name.lower())

    def entries(key: str) -> list[tuple[Mapping[str, Any], str]]:
        return [
            (node, _path(node.get("original_file_path"), project_dir))
            for node in _as_dict(data.get(key)).values()
            if isinstance(node, Mapping) and isinstance(node.get("name"), str)
        ]

    return semantic_layer(
        entries("semantic_models"), entries("metrics"), entries("saved_queries"),
        ref_fqn=ref_fqn, groups=snapshot.groups, dialect=dialect,
    )


def _dialect_of(adapter_type: Any) -> str | None:
    """The sqlglot dialect of a manifest's ``metadata.adapter_type`` (None when unknown)."""
    return ADAPTER_DIALECTS.get(str(adapter_type or "").lower())


def _path(path: Any, project_dir: str | None) -> str:
    text = str(path or "")
    if project_dir in (None, "", "."):
        return text
    return posixpath.join(str(project_dir).strip("/"), text)


def _tests_by_column(nodes: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Generic tests (not_null, unique, accepted_values, relationships...) per node and column,
    in the YAML shape ``rules.dbt_project`` reads; ``""`` holds model-level tests."""
    out: dict[str, dict[str, list[Any]]] = {}
    for node in nodes.values():
        if not isinstance(node, Mapping) or node.get("resource_type") != "test":
            continue
        metadata = _as_dict(node.get("test_metadata"))
        name = metadata.get("name")
        if not name:
            continue
        attached = node.get("attached_node")
        if not attached:
            parents = _as_list(_as_dict(node.get("depends_on")).get("nodes"))
            attached = parents[0] if len(parents) == 1 else None
        if not attached:
            continue
        column = str(node.get("column_name") or _as_dict(metadata.get("kwargs")).get("column_name") or "")
        kwargs = dict(_as_dict(metadata.get("kwargs")))
        if isinstance(kwargs.get("to"), str):
            kwargs["to"] = kwargs["to"].replace("{{ ", "").replace(" }}", "")
        out.setdefault(str(attached), {}).setdefault(column.lower(), []).append({str(name): kwargs})
    return out


def _column_entries(columns: Any, tests: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    entries = []
    for key, column in _as_dict(columns).items():
        column = _as_dict(column)
        name = str(column.get("name") or key)
        entries.append({**column, "name": name, "data_tests": tests.get(name.lower(), [])})
    return entries


def _node_asset(
    node: Mapping[str, Any],
    fqns: Mapping[str, str],
    tests: Mapping[str, list[Any]],
    groups: Mapping[str, Group],
    project_dir: str | None,
    dialect: str | None,
) -> Asset:
    config = _as_dict(node.get("config"))
    meta = {**_as_dict(node.get("meta")), **_as_dict(config.get("meta"))}
    tessera = _as_dict(meta.get("tessera"))
    group = node.get("group") or config.get("group")
    contract = _as_dict(node.get("contract")) or _as_dict(config.get("contract"))
    enforced = bool(contract.get("enforced") or _as_dict(config.get("contract")).get("enforced"))
    raw = str(node.get("raw_code") or node.get("raw_sql") or "")
    compiled = node.get("compiled_code") or node.get("compiled_sql")
    columns = _columns(_column_entries(node.get("columns"), tests), dialect, raw, enforced)
    props = {"constraints": node.get("constraints"), "data_tests": tests.get("", [])}
    depends = [
        fqns.get(str(u), str(u).split(".")[-1])
        for u in _as_list(_as_dict(node.get("depends_on")).get("nodes"))
    ]
    latest = node.get("latest_version")
    deprecation = node.get("deprecation_date")
    compatibility = tessera.get("compatibility")
    checksum = _as_dict(node.get("checksum")).get("checksum") or raw
    kind = str(node.get("resource_type"))
    return Asset(
        fqn=node_fqn(node),
        kind=kind,  # type: ignore[arg-type]
        path=_path(node.get("original_file_path") or node.get("path"), project_dir),
        line=1,
        columns=columns,
        columns_known=bool(columns),
        dialect=dialect,
        sql=str(compiled if compiled else raw) if kind != "seed" else None,
        materialized=str(config.get("materialized") or ("seed" if kind == "seed" else "view")),
        name=str(node.get("name")),
        owner=_owner(tessera, groups.get(str(group)) if group else None, meta),
        group=str(group) if group else None,
        access=str(node.get("access") or config.get("access") or "protected") if kind == "model" else None,
        contract_enforced=enforced,
        version=None if node.get("version") in (None, "") else str(node.get("version")),
        latest_version=None if latest in (None, "") else str(latest),
        deprecation_date=None if not deprecation else str(deprecation)[:10],
        compatibility=compatibility.lower() if isinstance(compatibility, str) else None,
        description=str(node.get("description") or ""),
        tags=tuple(str(t) for t in _as_list(node.get("tags") or config.get("tags"))),
        meta=meta,
        constraints=_model_constraints(props),
        unique_key=tuple(str(k).lower() for k in _as_list(config.get("unique_key")) if isinstance(k, str)),
        depends_on=tuple(dict.fromkeys(depends)),
        enabled=config.get("enabled", True) is not False,
        package=str(node.get("package_name")) if node.get("package_name") else None,
        checksum=stable_hash(
            str(checksum),
            _plain(node.get("columns")),
            _plain(config),
            _plain(node.get("constraints")),
            _plain(tests),
        ),
        relation=str(node.get("relation_name")) if node.get("relation_name") else None,
    )


def _source_asset(
    node: Mapping[str, Any], tests: Mapping[str, list[Any]], project_dir: str | None, dialect: str | None
) -> Asset:
    meta = {**_as_dict(node.get("source_meta")), **_as_dict(node.get("meta"))}
    tessera = _as_dict(meta.get("tessera"))
    owner = tessera.get("owner") or meta.get("owner")
    columns = _columns(_column_entries(node.get("columns"), tests), dialect, "", False)
    compatibility = tessera.get("compatibility")
    return Asset(
        fqn=node_fqn(node),
        kind="source",
        path=_path(node.get("original_file_path") or node.get("path"), project_dir),
        columns=columns,
        columns_known=bool(columns),
        dialect=dialect,
        name=str(node.get("name")),
        owner=str(owner) if isinstance(owner, str) and owner else None,
        compatibility=compatibility.lower() if isinstance(compatibility, str) else None,
        description=str(node.get("description") or ""),
        tags=tuple(str(t) for t in _as_list(node.get("tags"))),
        meta=meta,
        package=str(node.get("package_name")) if node.get("package_name") else None,
        checksum=stable_hash(_plain(node.get("columns")), _plain(meta), str(node.get("relation_name") or "")),
        relation=str(node.get("relation_name")) if node.get("relation_name") else None,
    )


def _group(node: Mapping[str, Any]) -> Group:
    owner = _as_dict(node.get("owner"))
    meta = {**_as_dict(_as_dict(node.get("config")).get("meta")), **_as_dict(owner.get("meta"))}
    best = _as_dict(meta.get("tessera")).get("owner") or owner.get("email") or owner.get("name")
    return Group(
        name=str(node["name"]),
        owner_name=str(owner["name"]) if owner.get("name") else None,
        owner_email=str(owner["email"]) if owner.get("email") else None,
        owner=str(best) if best else None,
    )


def _exposure(
    node: Mapping[str, Any], fqns: Mapping[str, str], project_dir: str | None, layer: SemanticLayer
) -> Exposure:
    owner = _as_dict(node.get("owner"))
    meta = {**_as_dict(node.get("meta")), **_as_dict(_as_dict(node.get("config")).get("meta"))}
    tessera = _as_dict(meta.get("tessera"))
    nodes = [str(u) for u in _as_list(_as_dict(node.get("depends_on")).get("nodes"))]
    metrics = [f"metric('{u.split('.')[-1]}')" for u in nodes if u.startswith("metric.")]
    read_through_metrics = exposure_metric_reads(metrics, layer)
    depends = tuple(
        dict.fromkeys(
            [*(fqns.get(u, u.split(".")[-1]) for u in nodes if not u.startswith("metric.")), *read_through_metrics]
        )
    )
    columns: dict[str, tuple[str, ...]] = {}
    declared = tessera.get("columns")
    if isinstance(declared, Mapping):
        latest = {fqn.rsplit(".v", 1)[0]: fqn for fqn in depends if ".v" in fqn}
        for key, cols in declared.items():
            target = str(key).lower()
            columns[latest.get(target, target)] = tuple(str(c) for c in _as_list(cols))
    elif isinstance(declared, list):
        columns = {dep: tuple(str(c) for c in declared) for dep in depends}
    plain = {fqns.get(u, u.split(".")[-1]) for u in nodes if not u.startswith("metric.")}
    for model, read in read_through_metrics.items():
        if model not in plain and read is not None:
            columns.setdefault(model, read)
    raw_owner = tessera.get("owner") or owner.get("email") or owner.get("name")
    return Exposure(
        name=str(node["name"]),
        depends_on=depends,
        owner=str(raw_owner) if raw_owner else None,
        owner_name=str(owner["name"]) if owner.get("name") else None,
        owner_email=str(owner["email"]) if owner.get("email") else None,
        type=str(node["type"]) if node.get("type") else None,
        url=str(node["url"]) if node.get("url") else None,
        path=_path(node.get("original_file_path"), project_dir) if node.get("original_file_path") else None,
        description=str(node.get("description") or ""),
        columns=columns,
    )


def manifest_project(
    data: Mapping[str, Any], *, project_dir: str | None = None, dialect: str | None = None
) -> DbtProject:
    """The manifest's models as a :class:`DbtProject`, so that nodes without ``compiled_code``
    (a manifest from ``dbt parse``) can have their ``raw_code`` rendered like project files:
    ``ref`` / ``source`` render as fqn-based names (see ``rules.dbt_project``), the root project's
    macros from the manifest are loaded best-effort."""
    metadata = _as_dict(data.get("metadata"))
    root = str(metadata.get("project_name") or "project")
    models: dict[str, ModelFile] = {}
    latest: dict[str, str] = {}
    for node in _as_dict(data.get("nodes")).values():
        if not isinstance(node, Mapping) or node.get("resource_type") not in ("model", "snapshot"):
            continue
        if not node.get("name"):
            continue
        raw = str(node.get("raw_code") or node.get("raw_sql") or "")
        kind = "model"
        block = _SNAPSHOT_RE.search(raw)
        if node.get("resource_type") == "snapshot" and block is not None:
            raw, kind = block.group(2), "snapshot"
        fqn = node_fqn(node)
        version = node.get("version")
        if version not in (None, "") and node.get("latest_version") not in (None, ""):
            latest[str(node["name"]).lower()] = f"{str(node['name']).lower()}.v{node['latest_version']}"
        models[fqn] = ModelFile(
            fqn=fqn,
            name=str(node["name"]),
            path=_path(node.get("original_file_path") or node.get("path"), project_dir),
            raw_sql=raw,
            folder_fqn=(),
            version=None if version in (None, "") else str(version),
            kind=kind,
        )
    macros = [
        (_path(m.get("original_file_path"), project_dir), str(m.get("macro_sql") or ""))
        for m in _as_dict(data.get("macros")).values()
        if isinstance(m, Mapping) and m.get("package_name") == root and m.get("macro_sql")
    ]
    return DbtProject(
        name=root,
        folder=project_dir or ".",
        dialect=dialect or _dialect_of(metadata.get("adapter_type")),
        vars={},
        models=models,
        relations={},
        latest=latest,
        folder_configs={},
        sources={},
        exposures={},
        groups={},
        problems=[],
        macro_files=sorted(macros),
    )


def needs_rendering(sql: str | None) -> bool:
    """True for ``raw_code`` still holding Jinja (no ``compiled_code`` in the manifest)."""
    return bool(sql) and ("{{" in sql or "{%" in sql)  # type: ignore[operator]
