"""Benchmark: ``tessera check`` on generated 1,000-model dbt projects (issues 3 and 12's targets).

Two projects of different shapes, so that a speed-up cannot be one generator's artefact:

- ``layers`` (this module's generator): staging models over sources, then layers of CTE + join +
  aggregate models, 10-40 columns each, depth ~12, groups, exposures, a few contracts. Two pull
  requests of 20 models: *focused* in one domain, *scattered* over the project.
- ``wide`` (``bench/gen_wide.py``): 100-160-column staging, ``select *`` through joins and CTEs,
  Jinja loops, ``dbt_utils`` macros, snapshots, depth 17, 300 exposures. One pull request of 20
  models anywhere.

Each is generated in a temporary git repository; ``tessera check`` is timed as a fresh process:
cold (no parse cache) and warm (cache from the previous run). When dbt is available (``--dbt PATH``
or ``dbt`` on PATH, with the duckdb adapter), ``dbt parse`` of each project is timed in the same
rounds as the cold checks (in rotating order), so that ratios compare runs taken in the same
minutes; every run is printed.

    .venv/bin/python bench/engine.py [--projects layers wide] [--runs 3] [--dbt PATH] [--code CHECKOUT]

``--code`` times another checkout's ``tessera check`` (before/after). Targets (2-core machine):
cold < 5 s, warm < 1 s, and at least 5x faster than ``dbt parse``. ``--record`` appends the table
to ``bench/RESULTS.md`` under "Engine".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from importlib import util
from pathlib import Path
from types import ModuleType

import sqlglot.tokens

ROOT = Path(__file__).resolve().parent.parent



def _sibling(name: str) -> ModuleType:
    """A module next to this script (``bench/`` is a folder of scripts, not a package)."""
    spec = util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen_wide = _sibling("gen_wide")
PROJECTS = ("layers", "wide")
"""``layers``: this module's generator; ``wide``: ``bench/gen_wide.py``, shaped otherwise."""

TYPES = ("integer", "bigint", "varchar", "decimal(18,2)", "double", "date", "timestamp", "boolean")


@dataclass
class Model:
    """A generated model: its name, layer, output columns (name → type) and SQL."""

    name: str
    layer: int
    columns: dict[str, str] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    sql: str = ""
    group: str = ""


def _source_tables(rng: random.Random, count: int) -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    for i in range(count):
        cols = {"id": "integer", "customer_id": "integer", "created_at": "timestamp", "status": "varchar"}
        for k in range(rng.randint(8, 34)):
            cols[f"attr_{i}_{k}"] = rng.choice(TYPES)
        tables[f"src_{i:03d}"] = cols
    return tables


def _staging(rng: random.Random, index: int, table: str, cols: dict[str, str]) -> Model:
    model = Model(f"stg_{index:03d}", 0, parents=[f"source:{table}"])
    lines = []
    for name, typ in cols.items():
        out = name.replace("attr_", "f_") if name.startswith("attr_") else name
        if typ == "varchar" and name != "status":
            lines.append(f"trim({name}) as {out}")
        elif typ == "timestamp" and name != "created_at":
            lines.append(f"cast({name} as date) as {out}")
            typ = "date"
        elif name == "status":
            lines.append("lower(status) as status")
        else:
            lines.append(f"{name} as {out}" if out != name else name)
        model.columns[out] = typ
    body = ",\n        ".join(lines)
    model.sql = (
        f"with source as (\n    select * from {{{{ source('raw', '{table}') }}}}\n),\n\n"
        f"renamed as (\n    select\n        {body}\n    from source\n    where id is not null\n)\n\n"
        "select * from renamed\n"
    )
    return model


def _numeric(cols: dict[str, str]) -> list[str]:
    return [c for c, t in cols.items() if t in ("integer", "bigint", "decimal(18,2)", "double") and c != "id"]


def _layer_model(rng: random.Random, name: str, layer: int, parents: list[Model]) -> Model:
    """A join (and sometimes aggregate) of 1-3 parents, through CTEs."""
    model = Model(name, layer, parents=[p.name for p in parents])
    main = parents[0]
    ctes = []
    selected: list[str] = []
    aliases = []
    for n, parent in enumerate(parents):
        alias = f"p{n}"
        aliases.append(alias)
        keep = ["id", "customer_id"] + rng.sample(
            [c for c in parent.columns if c not in ("id", "customer_id")],
            k=min(len(parent.columns) - 2, rng.randint(6, 16)),
        )
        ctes.append(f"{alias} as (\n    select {', '.join(keep)}\n    from {{{{ ref('{parent.name}') }}}}\n)")
        for col in keep:
            selected.append(f"{alias}.{col}")
    aggregate = layer > 2 and rng.random() < 0.3
    outputs: list[str] = []
    if aggregate:
        model.columns["id"] = "integer"
        outputs.append("p0.customer_id as id")
        model.columns["customer_id"] = "integer"
        outputs.append("p0.customer_id")
        model.columns["row_count"] = "bigint"
        outputs.append("count(*) as row_count")
        for n, parent in enumerate(parents):
            nums = [c for c in _numeric(parent.columns) if f"p{n}.{c}" in selected and c != "customer_id"]
            for col in nums[: rng.randint(4, 12)]:
                out = f"sum_{col}_{n}"
                if out in model.columns:
                    continue
                typ = (
                    "decimal(38,2)"
                    if parent.columns[col].startswith("decimal")
                    else ("double" if parent.columns[col] == "double" else "bigint")
                )
                outputs.append(f"cast(sum(p{n}.{col}) as {typ}) as {out}")
                model.columns[out] = typ
            dims = [c for c, t in parent.columns.items() if t == "date" and f"p{n}.{c}" in selected]
            for col in dims[:2]:
                out = f"max_{col}_{n}"
                outputs.append(f"max(p{n}.{col}) as {out}")
                model.columns[out] = "date"
    else:
        model.columns["id"] = "integer"
        outputs.append("p0.id")
        model.columns["customer_id"] = "integer"
        outputs.append("p0.customer_id")
        for expr in selected:
            alias, col = expr.split(".")
            if col in ("id", "customer_id") or len(model.columns) >= 40:
                continue
            out = col if col not in model.columns else f"{col}_{alias}"
            if out in model.columns:
                continue
            typ = (parents[int(alias[1:])]).columns[col]
            roll = rng.random()
            if typ in ("integer", "bigint", "double") and roll < 0.25:
                outputs.append(f"coalesce({expr}, 0) * 2 as {out}")
            elif typ == "varchar" and roll < 0.2:
                outputs.append(f"upper({expr}) as {out}")
            elif typ == "date" and roll < 0.2:
                outputs.append(f"cast(date_trunc('month', {expr}) as date) as {out}")
            else:
                outputs.append(f"{expr} as {out}" if out != col else expr)
            model.columns[out] = typ
        if len(model.columns) < 10:
            for k in range(10 - len(model.columns)):
                outputs.append(f"p0.id + {k} as pad_{k}")
                model.columns[f"pad_{k}"] = "integer"
    joins = "".join(f"\nleft join {a} on {a}.customer_id = p0.customer_id" for a in aliases[1:])
    where = "\nwhere p0.id is not null" if rng.random() < 0.5 else ""
    group = "\ngroup by p0.customer_id" if aggregate else ""
    body = ",\n    ".join(outputs)
    model.sql = f"with {', '.join(ctes)}\n\nselect\n    {body}\nfrom p0{joins}{where}{group}\n"
    if main.layer == layer:
        raise AssertionError("a parent must come from an earlier layer")
    return model


DOMAINS = 8
TEAMS = ("core", "finance", "growth", "ops")


def generate(root: Path, *, models: int = 1000, depth: int = 12, seed: int = 7) -> dict[str, Model]:
    """Write the project under ``root``; returns the models by name.

    Like real projects, models live in domains (``DOMAINS``, two per team): each reads a model of
    its own domain one layer up, often a second one of its domain, and sometimes one of another
    domain, so lineage is a web, not one chain per mart.
    """
    rng = random.Random(seed)
    staging_count = max(10, models // 8)
    tables = _source_tables(rng, staging_count)
    out: dict[str, Model] = {}
    layers: list[list[Model]] = [[]]
    domain_of: dict[str, int] = {}
    for i, (table, cols) in enumerate(tables.items()):
        model = _staging(rng, i, table, cols)
        model.group = "platform"
        out[model.name] = model
        domain_of[model.name] = i % DOMAINS
        layers[0].append(model)
    remaining = models - staging_count
    per_layer = max(1, remaining // (depth - 1))
    for layer in range(1, depth):
        layers.append([])
        count = per_layer if layer < depth - 1 else models - len(out)
        for j in range(count):
            domain = j % DOMAINS
            previous = [m for m in layers[layer - 1] if domain_of[m.name] == domain] or layers[layer - 1]
            earlier = [m for layer_models in layers[:layer] for m in layer_models]
            own = [m for m in earlier if domain_of[m.name] == domain]
            parents = [rng.choice(previous)]
            if rng.random() < 0.6:
                parents.append(rng.choice(own))
            if rng.random() < 0.1:
                parents.append(rng.choice(earlier))
            parents = list({m.name: m for m in parents}.values())
            model = _layer_model(rng, f"m{layer:02d}_{j:03d}", layer, parents)
            model.group = TEAMS[domain // 2]
            out[model.name] = model
            domain_of[model.name] = domain
            layers[layer].append(model)
    _write_project(root, out, tables, rng)
    return out


def domain(model: Model) -> int:
    """The domain of a generated layer model (its index modulo ``DOMAINS``)."""
    return int(model.name.split("_")[1]) % DOMAINS


def _write_project(
    root: Path, models: dict[str, Model], tables: dict[str, dict[str, str]], rng: random.Random
) -> None:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: bench\nmodel-paths: ['models']\n"
        "models:\n  bench:\n    +materialized: view\n"
    )
    teams = ("platform", "core", "finance", "growth", "ops")
    (root / ".tessera.yml").write_text(
        "compatibility: backward\nteams:\n"
        + "".join(f"  {t}: {{github: bench/{t}, emails: [{t}@bench.test]}}\n" for t in teams)
        + "dbt:\n  dialect: duckdb\n"
    )
    groups = "groups:\n" + "".join(
        f"  - name: {t}\n    owner:\n      name: {t.title()}\n      email: {t}@bench.test\n" for t in teams
    )
    (root / "models" / "groups.yml").write_text(groups)
    src = ["version: 2", "sources:", "  - name: raw", "    schema: raw", "    tables:"]
    for table, cols in tables.items():
        src.append(f"      - name: {table}")
        src.append("        columns:")
        src += [f'          - {{name: {c}, data_type: "{t}"}}' for c, t in cols.items()]
    (root / "models" / "sources.yml").write_text("\n".join(src) + "\n")
    by_layer: dict[int, list[Model]] = {}
    for model in models.values():
        by_layer.setdefault(model.layer, []).append(model)
        folder = root / "models" / f"layer_{model.layer:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"{model.name}.sql").write_text(model.sql)
    for layer, items in by_layer.items():
        props = ["version: 2", "models:"]
        for model in items:
            props.append(f"  - name: {model.name}")
            props.append(f"    description: Generated model {model.name} of layer {layer}.")
            props.append(f"    config:\n      group: {model.group}")
            if layer >= 8 and rng.random() < 0.15:
                props.append("      contract:\n        enforced: true")
                props.append("    columns:")
                props += [f'      - {{name: {c}, data_type: "{t}"}}' for c, t in model.columns.items()]
        (root / "models" / f"layer_{layer:02d}" / "_models.yml").write_text("\n".join(props) + "\n")
    last = max(by_layer)
    exposures = ["version: 2", "exposures:"]
    for n, model in enumerate(by_layer[last][:30]):
        cols = [c for c in model.columns][:5]
        exposures += [
            f"  - name: dashboard_{n:02d}",
            "    type: dashboard",
            f"    owner:\n      email: {teams[1 + (n // 2 + 1) % 4]}@bench.test",
            f"    depends_on: [\"ref('{model.name}')\"]",
        ]
        if n % 3:  # every third dashboard declares no columns: it reads them all
            exposures.append(f"    meta:\n      tessera:\n        columns: [{', '.join(cols)}]")
    (root / "models" / "exposures.yml").write_text("\n".join(exposures) + "\n")


def change_models(
    root: Path, models: dict[str, Model], count: int, *, focused: bool, seed: int = 11
) -> list[str]:
    """Edit ``count`` models: drop, add or re-express a column.

    ``focused``: all in one domain (a typical PR: one team's area, across its layers); otherwise
    anywhere in the project (the worst case: every domain is touched).
    """
    rng = random.Random(seed)
    candidates = sorted((m for m in models.values() if m.layer >= 1), key=lambda m: m.name)
    if focused:
        candidates = [m for m in candidates if domain(m) == 0]
    chosen = rng.sample(candidates, min(count, len(candidates)))
    changed = []
    for n, model in enumerate(chosen):
        path = root / "models" / f"layer_{model.layer:02d}" / f"{model.name}.sql"
        lines = path.read_text().splitlines()
        select = lines.index("select")
        end = next(i for i in range(select, len(lines)) if lines[i].startswith("from "))
        body = lines[select + 1 : end]
        kind = n % 3
        if kind == 0 and len(body) > 3:  # drop the last-but-one output column
            victim = len(body) - 2
            del body[victim]
        elif kind == 1:  # add a column
            body[-1] = body[-1] + ","
            body.append("    p0.customer_id * 10 as added_key")
        elif "count(*)" in body[2]:  # change an expression (aggregate model)
            body[2] = body[2].replace("count(*)", "count(distinct p0.id)")
        else:  # change an expression
            body[1] = body[1].replace("p0.customer_id,", "p0.customer_id + 1 as customer_id,")
        path.write_text("\n".join(lines[: select + 1] + body + lines[end:]) + "\n")
        changed.append(str(path.relative_to(root)))
    return changed


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@bench.test", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


CHECK_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "TESSERA_PACKAGES_OFFLINE": "1",
}
"""The checks run as on a user's machine: Python keeps compiled modules (an environment that
forbids it makes every run compile Tessera's ~0.1 s of source again, while dbt, installed by
pip, was compiled once at install).

And neither side goes to the network: ``dbt parse`` reads the ``dbt_packages/`` the generator
installed (as after ``dbt deps``), so the check does not fetch ``wide``'s ``dbt_utils`` from the
dbt hub either (``TESSERA_PACKAGES_OFFLINE``; it renders the package's macros with its built-in
versions). Without it every cold check paid for a hub request (here: an HTTP client's import and
a failed DNS lookup, ~0.2 s of CPU; elsewhere a download), which ``dbt parse`` is never timed
with."""


def cache_folder(repo: Path) -> Path:
    """Where ``tessera check`` keeps ``repo``'s parse cache: ``<git dir>/tessera-cache``, which in a
    bare repository (the real projects' mirrors) is not under ``.git``."""
    common = Path(git(repo, "rev-parse", "--git-common-dir"))
    return (common if common.is_absolute() else repo / common).resolve() / "tessera-cache"


def time_check(
    repo: Path, base: str, head: str, *, cold: bool, code: Path = ROOT
) -> tuple[Timing, int, dict[str, object]]:
    """One ``tessera check`` as a fresh process (what a user waits for), run from the checkout
    ``code`` (another commit's engine, for before/after)."""
    if cold:
        shutil.rmtree(cache_folder(repo), ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "app.check",
        "--repo",
        str(repo),
        "--base",
        base,
        "--head",
        head,
        "--format",
        "json",
    ]
    done, timing = _timed(command, cwd=code, env=CHECK_ENV)
    if done.returncode == 2:
        raise RuntimeError(f"tessera check failed: {done.stderr.strip()}")
    return timing, done.returncode, json.loads(done.stdout)


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds of one child process. On a shared machine the CPU time is the
    steadier figure: wall time also counts waiting for cores other processes hold."""

    wall: float
    cpu: float


def _timed(command: list[str], **kwargs: object) -> tuple[subprocess.CompletedProcess[str], Timing]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, Timing(wall, cpu)


def time_dbt_parse(dbt: str, project: Path) -> Timing | None:
    """``dbt parse`` from scratch (no partial parse), or None when dbt cannot run here."""
    profiles = project.parent / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "profiles.yml").write_text(
        f"bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {project.parent / 'bench.duckdb'}\n"
    )
    shutil.rmtree(project / "target", ignore_errors=True)
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [
        dbt,
        "parse",
        "--no-partial-parse",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles),
    ]
    done, timing = _timed(command, env=env)
    if done.returncode != 0:
        print(f"dbt parse failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return timing


@dataclass(frozen=True)
class Scenario:
    """One pull request of one generated project: its branch and how many models it changes."""

    project: str
    name: str
    changed: int
    before: bool = False
    """Timed with ``--before``'s checkout rather than this one."""

    @property
    def label(self) -> str:
        return f"{self.project}: {self.changed} models changed, {self.name}" + (" (before)" if self.before else "")


def _generate(project: str, repo: Path, count: int, changed: int) -> tuple[list[Scenario], str]:
    """Write and commit one project with a branch per scenario; returns them and a description."""
    started = time.perf_counter()
    if project == "layers":
        models = generate(repo, models=count)
        sizes = [len(m.columns) for m in models.values()]
        depth = max(m.layer for m in models.values()) + 1
    else:
        wide = gen_wide.generate(repo, models=count)
        sizes = [len(m.columns) for m in wide.values()]
        depth = max(m.layer for m in wide.values()) + 2  # snapshots and staging below layer 1
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated project")
    base = git(repo, "rev-parse", "HEAD")
    scenarios = []
    for name, focused in ((("focused", True), ("scattered", False)) if project == "layers" else (("scattered", False),)):
        git(repo, "checkout", "-q", "-b", name, base)
        if project == "layers":
            paths = change_models(repo, models, changed, focused=focused)
        else:
            paths = gen_wide.change_models(repo, wide, changed)
        git(repo, "commit", "-q", "-am", f"change {len(paths)} models ({name})")
        scenarios.append(Scenario(project, name, len(paths)))
    git(repo, "checkout", "-q", base)
    described = (
        f"{project}: {len(sizes)} models, {sum(sizes)} columns (widest {max(sizes)}, "
        f"{sum(1 for n in sizes if n >= 100)} of 100+), depth {depth}, generated in {time.perf_counter() - started:.1f} s"
    )
    return scenarios, described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--projects", nargs="+", choices=PROJECTS, default=list(PROJECTS))
    parser.add_argument("--dbt", default=shutil.which("dbt"), help="the dbt executable (with dbt-duckdb)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose tessera check is timed")
    parser.add_argument("--before", type=Path, help="another checkout, timed in the same rounds (before/after)")
    parser.add_argument("--keep", action="store_true", help="keep the generated repositories")
    parser.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    try:
        scenarios: list[Scenario] = []
        repos: dict[str, Path] = {}
        descriptions = []
        for project in args.projects:
            repos[project] = workdir / project / "repo"
            made, described = _generate(project, repos[project], args.models, args.changed)
            scenarios += made
            if args.before is not None:
                scenarios += [replace(s, before=True) for s in made]
            descriptions.append(described)
            print(described)

        def check(scenario: Scenario, *, cold: bool) -> tuple[Timing, int, dict[str, object]]:
            code = args.before if scenario.before else args.code
            return time_check(repos[scenario.project], "main", scenario.name, cold=cold, code=code)

        # Interleaved: this kind of virtual machine drifts in speed by up to 2x over minutes, so
        # each round times every cold check and dbt parse back to back, and ratios compare medians
        # taken over the same minutes.
        cold: dict[Scenario, list[tuple[Timing, int, dict[str, object]]]] = {s: [] for s in scenarios}
        dbt_runs: dict[str, list[Timing]] = {p: [] for p in args.projects}
        for first in {s.before: s for s in reversed(scenarios)}.values():
            check(first, cold=True)  # untimed: compiles each checkout's modules once, as a first run would
        # The order within a round rotates, so that no one of them always runs right after
        # dbt's long burst (this kind of VM slows down after sustained load).
        steps: list[Scenario | str] = [*scenarios, *(args.projects if args.dbt else [])]
        for round_ in range(args.runs):
            shift = round_ % len(steps)
            for step in steps[shift:] + steps[:shift]:
                if isinstance(step, Scenario):
                    cold[step].append(check(step, cold=True))
                    print(f"  cold {step.label}: {cold[step][-1][0]}", flush=True)
                else:
                    timing = time_dbt_parse(args.dbt, repos[step])
                    if timing is not None:
                        dbt_runs[step].append(timing)
                        print(f"  dbt parse {step}: {timing}", flush=True)
        rows: list[tuple[str, Timing, str]] = []
        summaries: dict[str, dict[str, object]] = {}
        medians: dict[Scenario, tuple[Timing, Timing]] = {}
        for scenario in scenarios:
            check(scenario, cold=True)  # leaves this scenario's cache for the warm runs
            warm = [check(scenario, cold=False) for _ in range(args.runs)]
            medians[scenario] = (_median(cold[scenario]), _median(warm))
            rows.append((f"tessera check, cold (no parse cache), {scenario.label}", medians[scenario][0], "< 5 s"))
            rows.append((f"tessera check, warm (parse cache), {scenario.label}", medians[scenario][1], "< 1 s"))
            summaries[scenario.label] = _summary(cold[scenario][-1][2])
        dbt_times = {
            p: Timing(statistics.median(t.wall for t in runs), statistics.median(t.cpu for t in runs))
            for p, runs in dbt_runs.items()
            if runs
        }
        for project, timing in dbt_times.items():
            rows.append((f"dbt parse (no partial parse), {project}", timing, "-"))
        table = [
            f"| what | wall s (median of {args.runs}) | CPU s | target (wall) |",
            "|---|---|---|---|",
        ]
        table += [f"| {what} | {t.wall:.2f} | {t.cpu:.2f} | {target} |" for what, t, target in rows]
        for scenario, (cold_t, warm_t) in medians.items():
            dbt_time = dbt_times.get(scenario.project)
            if dbt_time is not None:
                table.append(
                    f"| dbt parse ÷ tessera check, {scenario.label}, cold / warm | "
                    f"{dbt_time.wall / cold_t.wall:.1f}x / {dbt_time.wall / warm_t.wall:.1f}x | "
                    f"{dbt_time.cpu / cold_t.cpu:.1f}x / {dbt_time.cpu / warm_t.cpu:.1f}x | >= 5x |"
                )
        table.append("")
        for scenario in scenarios:
            table.append(
                f"cold runs, {scenario.label} (wall / CPU s): "
                + ", ".join(f"{t.wall:.2f} / {t.cpu:.2f}" for t, _, _ in cold[scenario])
            )
        for project, runs in dbt_runs.items():
            if runs:
                table.append(f"dbt parse runs, {project} (wall / CPU s): " + ", ".join(f"{t.wall:.2f} / {t.cpu:.2f}" for t in runs))
        print()
        print("\n".join(descriptions))
        print()
        print("\n".join(table))
        print()
        print(f"findings: {summaries}")
        if args.record:
            record(table, summaries, descriptions)
        if args.keep:
            print(f"kept {workdir}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _summary(result: dict[str, object]) -> dict[str, object]:
    changes: list[dict[str, object]] = result["changes"]  # type: ignore[assignment]
    return {
        "changes": len(changes),
        "breaking": sum(1 for c in changes if c["severity"] == "breaking"),
        "impacts": len(result["impacts"]),  # type: ignore[arg-type]
        "required_acks": [r["team"] for r in result["required_acks"]],  # type: ignore[attr-defined,index]
        "errors": len(result["errors"]),  # type: ignore[arg-type]
    }


def _median(runs: list[tuple[Timing, int, dict[str, object]]]) -> Timing:
    return Timing(statistics.median(t.wall for t, _, _ in runs), statistics.median(t.cpu for t, _, _ in runs))


def record(table: list[str], summary: dict[str, dict[str, object]], descriptions: list[str]) -> None:
    """Append an "Engine" section to bench/RESULTS.md (other sections are left alone)."""
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    compiled = getattr(sqlglot.tokens, "SQLGLOTC_INSTALLED", False)
    section = [
        "",
        "## Engine",
        "",
        "`bench/engine.py`: generated dbt projects (`layers`: CTE/join/aggregate models over "
        f"{DOMAINS} domains; `wide`: `bench/gen_wide.py`), one commit per scenario changing models "
        "(dropped, added and re-expressed columns). `tessera check --format json` is timed as a fresh "
        "process (what a user waits for), cold (no `.git/tessera-cache`) and warm. Machine: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, sqlglot C extension: "
        f"{'yes' if compiled else 'no'}; {time.strftime('%Y-%m-%d', time.gmtime())}.",
        "",
        *(f"- {d}" for d in descriptions),
        "",
        *table,
        "",
        f"Findings of the run: {summary}.",
        "",
    ]
    if "## Engine" in text:
        before, _, after = text.partition("## Engine")
        rest = after.split("\n## ", 1)
        tail = ("\n## " + rest[1]) if len(rest) > 1 else ""
        text = before.rstrip("\n") + "\n" + "\n".join(section) + tail
    else:
        text = text.rstrip("\n") + "\n" + "\n".join(section)
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
