"""dbt's semantic layer as readers of model columns.

A semantic model (``semantic_models:`` with ``model: ref('x')``) reads the columns its entities,
dimensions and measures name: their ``expr`` when given (a SQL expression, read in the project's
dialect), else their own name. A metric reads what its measures read (through ratio and derived
metrics too) plus the dimensions its ``filter`` names; a saved query what its metrics, group-by
and where read. Each becomes an :class:`~rules.model.Exposure` on the models it reads, with those
columns only, so dropping a column a metric sums asks the metric's owner, and dropping one nobody
names asks nobody. Exposures that depend on ``metric('m')`` read what the metric reads.

Owners, most specific first: ``meta.tessera.owner``, the dbt ``group``'s owner, ``meta.owner``;
a metric or saved query without one belongs to the owner of the semantic model it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from rules.model import Exposure, Group

_REF = re.compile(r"""\bref\s*\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?(?:,\s*(?:v|version)\s*=\s*['"]?([\w.]+)['"]?\s*)?\)""")
_DIMENSION = re.compile(r"""\b(?:Dimension|TimeDimension|Entity)\s*\(\s*['"]([\w]+)['"]""")
_METRIC = re.compile(r"""\bmetric\s*\(\s*['"]([\w.]+)['"]\s*\)""")

Columns = tuple[str, ...] | None
"""Columns read of one model; None: every column (an ``expr`` that could not be read)."""


@dataclass
class _SemanticModel:
    name: str
    model: str
    owner: str | None
    path: str
    description: str
    columns: dict[str, Columns] = field(default_factory=dict)
    """Each entity, dimension and measure by name → the columns it reads."""

    def read(self, names: Iterable[str]) -> Columns:
        found: list[str] = []
        for name in names:
            columns = self.columns.get(name)
            if columns is None and name in self.columns:
                return None
            found.extend(columns or ())
        return tuple(dict.fromkeys(found))

    def all_columns(self) -> Columns:
        return self.read(self.columns)


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _owner(entry: Mapping[str, Any], groups: Mapping[str, Group]) -> str | None:
    meta = {**_dict(entry.get("meta")), **_dict(_dict(entry.get("config")).get("meta"))}
    explicit = _dict(meta.get("tessera")).get("owner")
    if explicit:
        return str(explicit)
    group = groups.get(str(entry.get("group") or _dict(entry.get("config")).get("group") or ""))
    if group is not None and group.owner:
        return group.owner
    return str(meta["owner"]) if meta.get("owner") else None


def expression_columns(expr: object, dialect: str | None) -> Columns:
    """The columns a semantic ``expr`` reads; None when it cannot be read as SQL."""
    text = str(expr).strip()
    if not text:
        return ()
    try:
        tree = sqlglot.parse_one(text, dialect=dialect or None)
    except Exception:  # noqa: BLE001 - any parse failure means: unknown, so every column
        return None
    return tuple(dict.fromkeys(c.name.lower() for c in tree.find_all(exp.Column) if c.name))


def _semantic_model(
    entry: Mapping[str, Any], path: str, ref_fqn: Callable[[str, str | None], str], groups: Mapping[str, Group],
    dialect: str | None,
) -> _SemanticModel | None:
    match = _REF.search(str(entry.get("model") or ""))
    if match is None:
        return None
    model = ref_fqn(match.group(2) or match.group(1), match.group(3))
    found = _SemanticModel(
        name=str(entry["name"]), model=model, owner=_owner(entry, groups), path=path,
        description=str(entry.get("description") or ""),
    )
    for key in ("entities", "dimensions", "measures"):
        for item in _list(entry.get(key)):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                continue
            expr = item.get("expr")
            name = item["name"].lower()
            if expr is None or expr is True:
                found.columns[name] = (name,)
            else:
                found.columns[name] = expression_columns(expr, dialect)
    return found


def _named(value: Any) -> list[str]:
    """Names from ``measure: x``, ``measure: {name: x}`` or a list of either."""
    out: list[str] = []
    for item in _list(value):
        if isinstance(item, str):
            out.append(item.lower())
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            out.append(item["name"].lower())
    return out


def _filters(value: Any) -> list[str]:
    """Dimension names a ``filter`` / ``where`` names (``Dimension('order__plan')`` → ``plan``)."""
    names: list[str] = []
    for text in _list(value):
        for match in _DIMENSION.finditer(str(text)):
            names.append(match.group(1).lower().rsplit("__", 1)[-1])
    return names


class _Layer:
    """The semantic models and metrics of one project, to resolve what each reader reads."""

    def __init__(self, models: list[_SemanticModel], metrics: Mapping[str, Mapping[str, Any]]) -> None:
        self.models = models
        self.metrics = metrics
        self._by_member: dict[str, list[_SemanticModel]] = {}
        for model in models:
            for name in model.columns:
                self._by_member.setdefault(name, []).append(model)

    def members(self, names: Iterable[str]) -> dict[str, Columns]:
        """model fqn → columns read, for measure/dimension/entity names."""
        reads: dict[str, Columns] = {}
        for name in names:
            for model in self._by_member.get(name, []):
                columns = model.read([name])
                reads[model.model] = _merge(reads.get(model.model, ()), columns) if model.model in reads else columns
        return reads

    def metric(self, name: str, seen: frozenset[str] = frozenset()) -> dict[str, Columns]:
        """What a metric reads: its measures (also through ratio/derived/conversion metrics)
        and the dimensions its filters name."""
        entry = self.metrics.get(name)
        if entry is None or name in seen:
            return {}
        seen = seen | {name}
        params = _dict(entry.get("type_params"))
        conversion = _dict(params.get("conversion_type_params"))
        measures = [
            *_named(params.get("measure")), *_named(params.get("measures")),
            *_named(conversion.get("base_measure")), *_named(conversion.get("conversion_measure")),
            *_named(_dict(params.get("cumulative_type_params")).get("measure")),
        ]
        reads = self.members([*measures, *_filters(entry.get("filter"))])
        for key in ("numerator", "denominator"):
            for other in _named(params.get(key)):
                reads = _merge_reads(reads, self.metric(other, seen))
        for other in _named(params.get("metrics")):
            reads = _merge_reads(reads, self.metric(other, seen))
        return reads

    def owner_of(self, reads: Mapping[str, Columns]) -> str | None:
        return next((m.owner for m in self.models if m.model in reads and m.owner), None)


def _merge(a: Columns, b: Columns) -> Columns:
    return None if a is None or b is None else tuple(dict.fromkeys((*a, *b)))


def _merge_reads(a: Mapping[str, Columns], b: Mapping[str, Columns]) -> dict[str, Columns]:
    out = dict(a)
    for model, columns in b.items():
        out[model] = _merge(out[model], columns) if model in out else columns
    return out


@dataclass(frozen=True)
class SemanticLayer:
    """The semantic layer's readers, and what ``metric('m')`` reads for exposures."""

    readers: tuple[Exposure, ...] = ()
    metric_reads: Mapping[str, Mapping[str, Columns]] = field(default_factory=dict)


def _reader(kind: str, name: str, reads: Mapping[str, Columns], owner: str | None, path: str, description: str) -> Exposure:
    return Exposure(
        name=f"{kind}.{name}",
        depends_on=tuple(reads),
        owner=owner,
        type=kind,
        path=path,
        description=description,
        columns={model: columns for model, columns in reads.items() if columns is not None},
    )


def semantic_layer(
    semantic_models: Iterable[tuple[Mapping[str, Any], str]],
    metrics: Iterable[tuple[Mapping[str, Any], str]],
    saved_queries: Iterable[tuple[Mapping[str, Any], str]],
    *,
    ref_fqn: Callable[[str, str | None], str],
    groups: Mapping[str, Group],
    dialect: str | None,
) -> SemanticLayer:
    """Every semantic model, metric and saved query of a project as a reader (see the module)."""
    models = [m for e, p in semantic_models if (m := _semantic_model(e, p, ref_fqn, groups, dialect)) is not None]
    metric_entries = {str(e["name"]).lower(): (e, p) for e, p in metrics}
    layer = _Layer(models, {name: entry for name, (entry, _p) in metric_entries.items()})
    readers: list[Exposure] = []
    for model in models:
        all_columns = model.all_columns()
        readers.append(_reader("semantic_model", model.name, {model.model: all_columns}, model.owner, model.path, model.description))
    metric_reads: dict[str, Mapping[str, Columns]] = {}
    for name, (entry, path) in metric_entries.items():
        reads = layer.metric(name)
        metric_reads[name] = reads
        if reads:
            owner = _owner(entry, groups) or layer.owner_of(reads)
            readers.append(_reader("metric", str(entry["name"]), reads, owner, path, str(entry.get("description") or "")))
    for entry, path in saved_queries:
        params = _dict(entry.get("query_params"))
        reads: dict[str, Columns] = layer.members([*_filters(params.get("group_by")), *_filters(params.get("where"))])
        for metric in _named(params.get("metrics")):
            reads = _merge_reads(reads, metric_reads.get(metric, {}))
        if reads:
            owner = _owner(entry, groups) or layer.owner_of(reads)
            readers.append(_reader("saved_query", str(entry["name"]), reads, owner, path, str(entry.get("description") or "")))
    return SemanticLayer(tuple(readers), metric_reads)


def exposure_metric_reads(depends_on: Iterable[object], layer: SemanticLayer) -> dict[str, Columns]:
    """What an exposure's ``depends_on: [metric('m')]`` entries read."""
    reads: dict[str, Columns] = {}
    for item in depends_on:
        match = _METRIC.search(str(item))
        if match:
            reads = _merge_reads(reads, layer.metric_reads.get(match.group(1).lower(), {}))
    return reads
