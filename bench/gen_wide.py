"""A second generated dbt project for ``bench/engine.py``, shaped unlike the first one.

The first project (``bench/engine.py``'s own generator) is narrow CTE-and-join models, 10-40
columns each. A speed that holds only there is not a speed, so this one differs where a real
project would: wide staging over 100-160-column sources, ``select *`` through joins and CTEs,
Jinja loops that pivot measures by a project var, package macros (``dbt_utils.star(except=...)``,
``generate_surrogate_key``), snapshots read by marts, deep ancestry (16 layers) and many
exposures. ``dbt_packages/`` is written for ``dbt parse`` but ignored by git, as after ``dbt deps``
in a real checkout; Tessera reads the commits, so it renders the package macros itself.

Every model is generated with its output columns known, and with the SQL a pull request would
give it (a dropped, added or re-typed column), so a change is one file write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

NUMERIC = ("integer", "bigint", "double", "decimal(18,2)")
TYPES = (*NUMERIC, "varchar", "varchar", "date", "timestamp", "boolean")
KEYS = ("id", "customer_id", "status", "updated_at")
"""Columns every model keeps, so any model can be a parent of any shape."""
STATUSES = ("new", "active", "paused", "closed")
TEAMS = ("core", "finance", "growth", "ops")
DOMAINS = 8
SNAPSHOT_COLUMNS = {"dbt_scd_id": "varchar", "dbt_updated_at": "timestamp", "dbt_valid_from": "timestamp",
                    "dbt_valid_to": "timestamp"}


@dataclass
class WideModel:
    """A generated model or snapshot: its file, output columns (name → type), SQL before and after
    the change a pull request would make to it."""

    name: str
    layer: int
    path: str
    columns: dict[str, str] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    sql: str = ""
    changed_sql: str = ""
    group: str = "platform"
    domain: int = 0


def _numeric(columns: dict[str, str]) -> list[str]:
    return [c for c, t in columns.items() if t in NUMERIC and c not in ("id", "customer_id")]


def _sum_type(typ: str) -> str:
    return "double" if typ == "double" else "decimal(38,2)" if typ.startswith("decimal") else "bigint"


def _name_of(line: str) -> str:
    return line.rsplit(" as ", 1)[1] if " as " in line else line.rsplit(".", 1)[-1]


def _edited(lines: list[str], kind: int) -> list[str]:
    """The explicit output lines after a pull request: the last one dropped, a column added, or
    the last one re-typed to text (keys are never touched)."""
    last = lines[-1]
    if kind == 0 and len(lines) > 1 and _name_of(last) not in KEYS:
        return lines[:-1]
    if kind == 2 and _name_of(last) not in KEYS:
        expression = last.rsplit(" as ", 1)[0]
        return [*lines[:-1], f"cast({expression} as varchar) as {_name_of(last)}"]
    return [*lines, "p0.customer_id * 10 as added_key" if "p0." in " ".join(lines) else "customer_id * 10 as added_key"]


def _source_tables(rng: random.Random, count: int) -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    for i in range(count):
        cols = {"id": "integer", "customer_id": "integer", "status": "varchar", "updated_at": "timestamp",
                "_loaded_at": "timestamp"}
        for k in range(rng.randint(96, 156)):
            cols[f"c{i:02d}_{k:03d}"] = rng.choice(TYPES)
        tables[f"wide_{i:02d}"] = cols
    return tables


def _staging(rng: random.Random, index: int, table: str, cols: dict[str, str], kind: int) -> WideModel:
    """Every other staging model selects through ``dbt_utils.star(except=...)``; the rest list
    their 100+ columns, trimming and casting."""
    model = WideModel(f"stg_{table}", 0, f"models/staging/stg_{table}.sql", parents=[f"source:raw.{table}"])
    model.domain = index % DOMAINS
    if index % 2 == 0:
        for name, typ in cols.items():
            if name != "_loaded_at":
                model.columns[name] = typ
        model.columns["row_key"] = "varchar"
        lines = ["{{ dbt_utils.generate_surrogate_key(['id', 'customer_id']) }} as row_key"]
        head = (
            "select\n    {{ dbt_utils.star(source('raw', '" + table + "'), except=['_loaded_at']) }},\n    "
        )
        tail = f"\nfrom {{{{ source('raw', '{table}') }}}}\nwhere id is not null\n"
        model.sql = head + ",\n    ".join(lines) + tail
        model.changed_sql = head + ",\n    ".join(_edited(lines, kind)) + tail
        return model
    lines = []
    for name, typ in cols.items():
        if name == "_loaded_at":
            continue
        if typ == "varchar" and name != "status":
            lines.append(f"trim({name}) as {name}")
        elif typ == "timestamp" and name != "updated_at":
            lines.append(f"cast({name} as date) as {name}")
            typ = "date"
        else:
            lines.append(name)
        model.columns[name] = typ
    head = f"with source as (\n    select * from {{{{ source('raw', '{table}') }}}}\n),\n\nrenamed as (\n    select\n        "
    tail = "\n    from source\n)\n\nselect * from renamed\n"
    model.sql = head + ",\n        ".join(lines) + tail
    model.changed_sql = head + ",\n        ".join(_edited(lines, kind)) + tail
    return model


def _snapshot(staging: WideModel) -> WideModel:
    name = staging.name.replace("stg_", "snap_")
    model = WideModel(name, 0, f"snapshots/{name}.sql", parents=[staging.name], domain=staging.domain)
    model.columns = {**staging.columns, **SNAPSHOT_COLUMNS}
    model.sql = model.changed_sql = (
        f"{{% snapshot {name} %}}\n\n"
        "{{ config(target_schema='snapshots', unique_key='id', strategy='timestamp', updated_at='updated_at') }}\n\n"
        f"select * from {{{{ ref('{staging.name}') }}}}\n\n{{% endsnapshot %}}\n"
    )
    return model


def _join_star(rng: random.Random, model: WideModel, parents: list[WideModel], kind: int) -> None:
    """``select p0.*`` and a few columns of each other parent."""
    model.columns = dict(parents[0].columns)
    lines: list[str] = []
    for n, parent in enumerate(parents[1:], start=1):
        extra = [c for c in parent.columns if c not in KEYS]
        for col in rng.sample(extra, k=min(len(extra), rng.randint(4, 10))):
            out = f"{col}_j{model.layer}"
            if out not in model.columns:
                lines.append(f"p{n}.{col} as {out}")
                model.columns[out] = parent.columns[col]
    if not lines:
        lines.append(f"p0.id * 2 as double_id_{model.layer}")
        model.columns[f"double_id_{model.layer}"] = "integer"
    joins = "".join(
        f"\nleft join {{{{ ref('{p.name}') }}}} as p{n} on p{n}.id = p0.id" for n, p in enumerate(parents[1:], start=1)
    )
    where = "\nwhere p0.dbt_valid_to is null" if "dbt_valid_to" in parents[0].columns else ""
    head = "select\n    p0.*,\n    "
    tail = f"\nfrom {{{{ ref('{parents[0].name}') }}}} as p0{joins}{where}\n"
    model.sql = head + ",\n    ".join(lines) + tail
    model.changed_sql = head + ",\n    ".join(_edited(lines, kind)) + tail


def _loop_aggregate(rng: random.Random, model: WideModel, parents: list[WideModel], kind: int) -> None:
    """Measures pivoted by status in a Jinja loop over a project var, grouped by customer."""
    parent = parents[0]
    measures = rng.sample(_numeric(parent.columns), k=min(len(_numeric(parent.columns)), rng.randint(4, 10)))
    for measure in measures:
        for status in STATUSES:
            model.columns[f"{measure}_{status}"] = _sum_type(parent.columns[measure])
    lines = ["p0.customer_id as id", "p0.customer_id", "max(p0.status) as status",
             "max(p0.updated_at) as updated_at", "count(*) as row_count"]
    model.columns.update({"id": "integer", "customer_id": "integer", "status": "varchar",
                          "updated_at": parent.columns["updated_at"], "row_count": "bigint"})
    head = (
        "{%- set measures = [" + ", ".join(f"'{m}'" for m in measures) + "] %}\n\nselect\n"
        "    {%- for measure in measures %}\n    {%- for status in var('bench_statuses') %}\n"
        "    sum(case when p0.status = '{{ status }}' then p0.{{ measure }} else 0 end) as {{ measure }}_{{ status }},\n"
        "    {%- endfor %}\n    {%- endfor %}\n    "
    )
    tail = f"\nfrom {{{{ ref('{parent.name}') }}}} as p0\ngroup by p0.customer_id\n"
    model.sql = head + ",\n    ".join(lines) + tail
    model.changed_sql = head + ",\n    ".join(_edited(lines, kind)) + tail


def _star_except(rng: random.Random, model: WideModel, parents: list[WideModel], kind: int) -> None:
    """``dbt_utils.star(ref(...), except=[...])`` in a CTE, then ``base.*`` plus a surrogate key."""
    parent = parents[0]
    dropped = rng.sample([c for c in parent.columns if c not in KEYS], k=2)
    dropped += [c for c in ("row_key", "status_label") if c in parent.columns and c not in dropped]
    model.columns = {c: t for c, t in parent.columns.items() if c not in dropped}
    model.columns["row_key"] = "varchar"
    model.columns["status_label"] = "varchar"
    lines = ["{{ dbt_utils.generate_surrogate_key(['base.id', 'base.customer_id']) }} as row_key",
             "upper(base.status) as status_label"]
    excluded = ", ".join(f"'{c}'" for c in dropped)
    head = (
        f"with base as (\n    select {{{{ dbt_utils.star(ref('{parent.name}'), except=[{excluded}]) }}}}\n"
        f"    from {{{{ ref('{parent.name}') }}}}\n)\n\nselect\n    base.*,\n    "
    )
    tail = "\nfrom base\n"
    model.sql = head + ",\n    ".join(lines) + tail
    model.changed_sql = head + ",\n    ".join(_edited(lines, kind)) + tail


def _cte_join(rng: random.Random, model: WideModel, parents: list[WideModel], kind: int) -> None:
    """One CTE per parent (20-60 columns of the first, 5-20 of the others), an explicit wide select,
    and ``select * from final``."""
    ctes = []
    lines = ["p0.id", "p0.customer_id", "p0.status", "p0.updated_at"]
    model.columns = {k: parents[0].columns[k] for k in KEYS}
    for n, parent in enumerate(parents):
        pool = [c for c in parent.columns if c not in KEYS]
        keep = rng.sample(pool, k=min(len(pool), rng.randint(20, 60) if n == 0 else rng.randint(5, 20)))
        ctes.append(f"p{n} as (\n    select {', '.join([*KEYS, *keep])}\n    from {{{{ ref('{parent.name}') }}}}\n)")
        for col in keep:
            out = col if col not in model.columns else f"{col}_p{n}"
            if out in model.columns or len(model.columns) >= 140:
                continue
            typ = parent.columns[col]
            roll = rng.random()
            if typ in NUMERIC and roll < 0.3:
                lines.append(f"coalesce(p{n}.{col}, 0) * 2 as {out}")
            elif typ == "varchar" and roll < 0.2:
                lines.append(f"lower(p{n}.{col}) as {out}")
            else:
                lines.append(f"p{n}.{col} as {out}" if out != col else f"p{n}.{col}")
            model.columns[out] = typ
    joins = "".join(f"\n    left join p{n} on p{n}.customer_id = p0.customer_id" for n in range(1, len(parents)))
    head = f"with {', '.join(ctes)},\n\nfinal as (\n    select\n        "
    tail = f"\n    from p0{joins}\n)\n\nselect * from final\n"
    model.sql = head + ",\n        ".join(lines) + tail
    model.changed_sql = head + ",\n        ".join(_edited(lines, kind)) + tail


def generate(root: Path, *, models: int = 1000, depth: int = 16, seed: int = 5) -> dict[str, WideModel]:
    """Write the project under ``root`` (and its gitignored ``dbt_packages/``); returns every
    model and snapshot by name."""
    rng = random.Random(seed)
    tables = _source_tables(rng, 40)
    out: dict[str, WideModel] = {}
    layers: list[list[WideModel]] = [[]]
    for i, (table, cols) in enumerate(tables.items()):
        model = _staging(rng, i, table, cols, i % 3)
        out[model.name] = model
        layers[0].append(model)
        if i % 4 == 0:
            snap = _snapshot(model)
            out[snap.name] = snap
            layers[0].append(snap)
    remaining = models - len(tables)
    per_layer = remaining // (depth - 1)
    shapes = (_join_star, _loop_aggregate, _star_except, _cte_join, _cte_join)
    for layer in range(1, depth):
        layers.append([])
        count = per_layer if layer < depth - 1 else models - sum(1 for m in out.values() if m.layer > 0) - len(tables)
        for j in range(count):
            domain = j % DOMAINS
            previous = [m for m in layers[layer - 1] if m.domain == domain] or layers[layer - 1]
            earlier = [m for ms in layers[:layer] for m in ms]
            parents = [rng.choice(previous)]
            if rng.random() < 0.5:
                parents.append(rng.choice([m for m in earlier if m.domain == domain] or earlier))
            if rng.random() < 0.15:
                parents.append(rng.choice(earlier))
            parents = list({m.name: m for m in parents}.values())
            name = f"w{layer:02d}_{j:03d}"
            model = WideModel(name, layer, f"models/marts/layer_{layer:02d}/{name}.sql",
                              parents=[p.name for p in parents], group=TEAMS[domain // 2], domain=domain)
            shape = shapes[rng.randrange(len(shapes))]
            if shape is _join_star and len(parents[0].columns) > 200:
                shape = _cte_join  # select * would only grow wider down a chain
            shape(rng, model, parents, j % 3)
            out[name] = model
            layers[layer].append(model)
    _write(root, out, tables, rng)
    return out


def change_models(root: Path, models: dict[str, WideModel], count: int, *, seed: int = 13) -> list[str]:
    """Apply the pull request's edit to ``count`` models of layers 2 and below, anywhere."""
    rng = random.Random(seed)
    candidates = sorted((m for m in models.values() if m.layer >= 2), key=lambda m: m.name)
    chosen = rng.sample(candidates, min(count, len(candidates)))
    for model in chosen:
        (root / model.path).write_text(model.changed_sql)
    return [m.path for m in chosen]


def _write(root: Path, models: dict[str, WideModel], tables: dict[str, dict[str, str]], rng: random.Random) -> None:
    (root / "models" / "staging").mkdir(parents=True, exist_ok=True)
    (root / "snapshots").mkdir(exist_ok=True)
    (root / "dbt_project.yml").write_text(
        "name: wide\nversion: '1.0.0'\nconfig-version: 2\nprofile: bench\nmodel-paths: ['models']\n"
        "snapshot-paths: ['snapshots']\n"
        f"vars:\n  bench_statuses: [{', '.join(repr(s) for s in STATUSES)}]\n"
        "models:\n  wide:\n    +materialized: view\n    marts:\n      +materialized: table\n"
    )
    (root / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n")
    (root / ".gitignore").write_text("dbt_packages/\ntarget/\nlogs/\n")
    _write_package(root / "dbt_packages" / "dbt_utils")
    teams = ("platform", *TEAMS)
    (root / ".tessera.yml").write_text(
        "compatibility: backward\nteams:\n"
        + "".join(f"  {t}: {{github: wide/{t}, emails: [{t}@wide.test]}}\n" for t in teams)
        + "dbt:\n  dialect: duckdb\n"
    )
    (root / "models" / "groups.yml").write_text("groups:\n" + "".join(
        f"  - name: {t}\n    owner:\n      name: {t.title()}\n      email: {t}@wide.test\n" for t in teams
    ))
    src = ["version: 2", "sources:", "  - name: raw", "    schema: raw", "    tables:"]
    for table, cols in tables.items():
        src += [f"      - name: {table}", "        columns:"]
        src += [f'          - {{name: {c}, data_type: "{t}"}}' for c, t in cols.items()]
    (root / "models" / "staging" / "_sources.yml").write_text("\n".join(src) + "\n")
    by_folder: dict[Path, list[WideModel]] = {}
    for model in models.values():
        path = root / model.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(model.sql)
        if not model.name.startswith("snap_"):
            by_folder.setdefault(path.parent, []).append(model)
    for folder, items in by_folder.items():
        props = ["version: 2", "models:"]
        for model in items:
            props += [f"  - name: {model.name}", f"    description: Generated model {model.name}.",
                      f"    config:\n      group: {model.group}"]
            if rng.random() < 0.3:  # documented columns, as real projects document some of theirs
                props.append("    columns:")
                props.append("      - name: id\n        description: The key.\n        data_tests: [not_null]")
                props += [f"      - name: {c}\n        description: Column {c}." for c in list(model.columns)[4:8]]
        (folder / "_models.yml").write_text("\n".join(props) + "\n")
    top = min(6, max(m.layer for m in models.values()))  # the last ten layers of the full project
    marts = sorted((m for m in models.values() if m.layer >= top), key=lambda m: m.name)
    exposures = ["version: 2", "exposures:"]
    for n in range(300):
        reads = rng.sample(marts, k=rng.randint(1, 3))
        exposures += [
            f"  - name: report_{n:03d}",
            "    type: " + ("dashboard" if n % 3 else "analysis"),
            f"    owner:\n      email: {teams[1 + n % 4]}@wide.test",
            "    depends_on: [" + ", ".join(f"\"ref('{m.name}')\"" for m in reads) + "]",
        ]
        if n % 4:  # every fourth declares no columns: it reads them all
            cols = [c for m in reads for c in list(m.columns)[:3]]
            exposures.append(f"    meta:\n      tessera:\n        columns: [{', '.join(dict.fromkeys(cols))}]")
    (root / "models" / "exposures.yml").write_text("\n".join(exposures) + "\n")


def _write_package(folder: Path) -> None:
    """A stand-in for the two dbt_utils macros the project calls, enough for ``dbt parse`` (which
    renders them with ``execute`` false) and for a run; written here, so the benchmark needs no
    network for ``dbt deps``."""
    (folder / "macros").mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text("name: dbt_utils\nversion: '1.3.0'\nconfig-version: 2\nmacro-paths: ['macros']\n")
    (folder / "macros" / "star.sql").write_text(
        "{% macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) %}\n"
        "  {%- if not execute -%}*{%- else -%}\n"
        "  {%- set names = [] -%}\n"
        "  {%- for column in adapter.get_columns_in_relation(from) if column.name | lower not in except -%}\n"
        "    {%- do names.append((relation_alias ~ '.' if relation_alias else '') ~ adapter.quote(column.name)) -%}\n"
        "  {%- endfor -%}\n"
        "  {{ names | join(', ') }}\n"
        "  {%- endif -%}\n"
        "{% endmacro %}\n"
    )
    (folder / "macros" / "surrogate_key.sql").write_text(
        "{% macro generate_surrogate_key(field_list) %}\n"
        "  md5(concat({% for field in field_list %}coalesce(cast({{ field }} as varchar), '_null_')"
        "{% if not loop.last %}, '-', {% endif %}{% endfor %}))\n"
        "{% endmacro %}\n"
    )
