"""Read a dbt project straight from the repository, without dbt installed.

A project is read in two steps so that big projects stay cheap (issue 3's performance targets):

1. :func:`read_project` reads ``dbt_project.yml``, the YAML property files and the model SQL files,
   and finds each model's refs and sources with a regular expression over the raw SQL. That is
   enough for the DAG, the declared columns and every property; nothing is rendered yet.
2. :meth:`DbtProject.render` renders one model's Jinja (``ref``, ``source``, ``config``, ``var``,
   ``this``... stubbed as below) into SQL that sqlglot can read. ``rules.build`` renders only the
   models the analysis needs; :func:`load_project` renders them all.

How relations are rendered (the resolver contract with ``rules.build``): ``ref('m')`` renders as
the plain model name ``m`` (``m_v2`` for version 2, dbt's default alias; ``ref('m')`` without a
version means the latest version), ``source('s', 't')`` as ``s.t``, ``this`` as the model's own
name. :attr:`DbtProject.relations` maps each rendered name back to its fqn (``m``, ``m.v2``,
``s.t``), so a table reference in rendered SQL is resolved by looking its lower-case
``schema.name`` / ``name`` up there.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import CodeType, SimpleNamespace
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import jinja2
import jinja2.sandbox
import yaml

from rules import jinja_subset, yamlsafe
from rules.dbt_macros import (
    CROSS_DATABASE_MACROS,
    DYNAMIC_MARKER,
    PACKAGE_MACROS,
    WAREHOUSE_CALLS,
    Adapter,
    Api,
    package_of,
)
from rules.dbt_semantic_layer import SemanticLayer, exposure_metric_reads, semantic_layer
from rules.model import PROPERTIES_AT, UNKNOWN, Asset, Column, Exposure, Group, ParseProblem, Snapshot
from rules.seeds import csv_column_types, project_column_types
from rules.sources import FileSource
from rules.types import normalize_type
from rules.yamlsafe import MAX_YAML_VALUES, expands_too_far

MAX_FILE_CHARS = 2_000_000
"""Model and property files larger than this are not read (a problem says so): rendering and
parsing them would hold a worker for minutes, and no hand-written model is that big."""


_PADDING = re.compile(
    # strings are kept as they are; comments and runs of blanks are not. Whatever is left open
    # runs to the end, as it would for the parser (and so the text is scanned once, not again
    # from every unclosed quote or comment).
    r"('[^'\\]*(?:(?:\\.|'')[^'\\]*)*(?:'|\Z)|\"[^\"]*(?:\"|\Z))"
    r"|(--[^\n]*|/\*.*?(?:\*/|\Z)|\{#.*?(?:#\}|\Z)|[ \t\f\v]{2,})",
    re.DOTALL,
)


def statement_text(text: str) -> str:
    """``text`` without its comments and runs of blanks, line breaks kept (so lines still match):
    size limits count what would be parsed, so padding a model with a comment cannot push it past
    the limit and out of sight."""

    def keep(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        return "\n" * match.group(2).count("\n") or " "

    return _PADDING.sub(keep, text)


def _too_big(path: str, text: str) -> ParseProblem:
    return ParseProblem(
        path,
        f"file is {len(text) // 1_000_000} MB, larger than the {MAX_FILE_CHARS // 1_000_000} MB Tessera reads; not analysed",
        1,
    )


SKIPPED_FOLDERS: tuple[str, ...] = ("dbt_packages", "dbt_modules", "target", "logs", ".venv", "node_modules")
"""Folders never searched for projects or models: installed packages and build output."""

MODEL_CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "materialized",
        "enabled",
        "tags",
        "schema",
        "database",
        "alias",
        "contract",
        "access",
        "group",
        "meta",
        "docs",
        "persist_docs",
        "unique_key",
        "on_schema_change",
        "incremental_strategy",
        "grants",
        "full_refresh",
        "sql_header",
        "pre-hook",
        "post-hook",
        "pre_hook",
        "post_hook",
        "cluster_by",
        "partition_by",
        "sort",
        "dist",
        "transient",
        "column_types",
        "quote_columns",
        "event_time",
        "batch_size",
        "lookback",
        "begin",
        "bind",
        "labels",
        "copy_grants",
        "snowflake_warehouse",
        "file_format",
        "location_root",
    }
)
"""Config names that dbt accepts without a ``+`` prefix in ``dbt_project.yml``."""

_REF_RE = re.compile(
    r"""\bref\s*\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]+)\3\s*)?(?:,\s*(?:v|version)\s*=\s*['"]?([\w.]+)['"]?\s*)?\)"""
)
_SOURCE_RE = re.compile(r"""\bsource\s*\(\s*(['"])([^'"]+)\1\s*,\s*(['"])([^'"]+)\3\s*\)""")
_EXPRESSION_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_SNAPSHOT_RE = re.compile(r"\{%-?\s*snapshot\s+(\w+)\s*-?%\}(.*?)\{%-?\s*endsnapshot\s*-?%\}", re.DOTALL)


# --- small helpers ------------------------------------------------------------------------------


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser is ~10x faster


class _LineLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """A YAML loader whose mappings remember the line they start on (for ParseProblem / Column.line)."""


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping from YAML that knows its 1-based line in the file."""

    line: int | None = None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict(loader.construct_pairs(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, path: str) -> tuple[Any, ParseProblem | None]:
    """YAML with line-aware mappings, or a ParseProblem (never an exception). A document whose
    aliases expand past :data:`MAX_YAML_VALUES` (a "billion laughs" bomb) is not loaded at all."""
    if expands_too_far(text):
        return None, ParseProblem(
            path,
            f"YAML aliases expand to over {MAX_YAML_VALUES:,} values (a \"billion laughs\" document?); not read",
            1,
        )
    try:
        return yamlsafe.load(text, _LineLoader), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, ParseProblem(
            path, f"invalid YAML: {reason}", mark.line + 1 if mark is not None else None
        )


def line_of(value: Any) -> int | None:
    return value.line if isinstance(value, LineDict) else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _norm_type(text: str | None, dialect: str | None) -> str:
    """Canonical type text through ``rules.types`` (E1); upper-cased text until that exists."""
    if text is None or not str(text).strip():
        return UNKNOWN
    return normalize_type(str(text), dialect)


def stable_hash(*parts: Any) -> str:
    """A content hash over text and JSON-able values (checksums, cache keys)."""
    digest = hashlib.sha256()
    for part in parts:
        if not isinstance(part, str):
            part = json.dumps(part, sort_keys=True, default=str)
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def merge_config(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """dbt's config inheritance: later wins, except ``meta`` merges and ``tags`` accumulate."""
    out = dict(base)
    for key, value in extra.items():
        key = key.lstrip("+").replace("pre_hook", "pre-hook").replace("post_hook", "post-hook")
        if key == "meta" and isinstance(value, Mapping):
            out["meta"] = {**_as_dict(out.get("meta")), **value}
        elif key == "tags":
            tags = [t for t in _as_list(out.get("tags")) if isinstance(t, str)]
            tags += [t for t in _as_list(value) if isinstance(t, str) and t not in tags]
            out["tags"] = tags
        elif key in ("contract", "docs", "persist_docs") and isinstance(value, Mapping):
            out[key] = {**_as_dict(out.get(key)), **value}
        else:
            out[key] = value
    return out


def find_projects(paths: Iterable[str]) -> list[str]:
    """Folders holding a ``dbt_project.yml`` (``"."`` for the repository root), outside installed
    packages and build output, sorted."""
    found: set[str] = set()
    for path in paths:
        if not path.endswith("dbt_project.yml") or posixpath.basename(path) != "dbt_project.yml":
            continue
        folder = posixpath.dirname(path)
        if any(part in SKIPPED_FOLDERS for part in folder.split("/")):
            continue
        found.add(folder or ".")
    return sorted(found)


def _join(folder: str, path: str) -> str:
    joined = (
        posixpath.normpath(posixpath.join(folder, path))
        if folder not in ("", ".")
        else posixpath.normpath(path)
    )
    return joined.lstrip("./") if joined.startswith("./") else joined


def render_relation(name: str, dialect: str | None) -> str:
    """A relation name as it appears in rendered SQL: plain when it can be, else quoted."""
    parts = name.split(".")
    out = []
    for part in parts:
        if _PLAIN_NAME.match(part):
            out.append(part)
        elif dialect in ("bigquery", "databricks", "spark", "mysql", "hive"):
            out.append(f"`{part}`")
        else:
            out.append(f'"{part}"')
    return ".".join(out)


# --- the project's parts --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    """One model (or one version of a model) before rendering."""

    fqn: str
    name: str
    path: str
    raw_sql: str
    folder_fqn: tuple[str, ...]
    """dbt's fqn parts below the model path (``staging``, ``crm``) for folder configs."""
    version: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The YAML entry (merged with its version entry) or empty."""
    properties_path: str | None = None
    refs: tuple[str, ...] = ()
    """Upstream fqns found cheaply in the raw SQL (regex), for the DAG."""
    blob_id: str | None = None
    kind: str = "model"
    """``model``; ``python`` for a dbt Python model (not read, YAML only); ``snapshot`` for a
    ``{% snapshot %}`` block (its body is ``raw_sql``)."""
    line: int = 1
    """The line of the file the SQL starts on (a snapshot block's first line)."""
    unreadable: bool = False
    """The file is listed but its text could not be had (binary, too large): its columns are
    unknown on this side, whatever its YAML declares, so no removal is claimed from it."""


@dataclass(frozen=True)
class Rendered:
    """What rendering one model produced."""

    sql: str
    config: Mapping[str, Any]
    depends_on: tuple[str, ...]
    problems: tuple[ParseProblem, ...] = ()
    first_line: int = 0
    """The file line the rendered SQL's first line came from, when rendering kept every line
    where it was (so a parse error's line in the SQL is a line in the file); 0 when it did not."""
    unset_vars: tuple[str, ...] = ()
    """Vars it read that ``dbt_project.yml`` does not set and that have no default: dbt would
    need them from ``--vars``; they render as nothing here, which may leave SQL unreadable."""
    dynamic: bool = False
    """It called a macro that asks the warehouse (``run_query``, ``get_column_values``...): the
    columns the query shows are only part of what the model builds."""


def _first_line(raw: str, rendered: str) -> int:
    """See :attr:`Rendered.first_line`."""
    if rendered.count("\n") != raw.count("\n"):
        return 0
    lead = rendered[: len(rendered) - len(rendered.lstrip())]
    return 1 + lead.count("\n")


SNAPSHOT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dbt_scd_id", "varchar"),
    ("dbt_updated_at", "timestamp"),
    ("dbt_valid_from", "timestamp"),
    ("dbt_valid_to", "timestamp"),
)
"""The columns dbt adds to every snapshot's rows."""


def _as_snapshot(rendered: Rendered, line: int) -> Rendered:
    """A snapshot's output: its query's columns plus dbt's bookkeeping columns; problems moved
    to the block's lines in the file."""
    problems = tuple(replace(p, line=p.line + line - 1 if p.line else p.line) for p in rendered.problems)
    if not rendered.sql:
        return replace(rendered, problems=problems)
    extra = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in SNAPSHOT_COLUMNS)
    sql = f"select snapshot_source.*, {extra}\nfrom (\n{rendered.sql}\n) as snapshot_source"
    return replace(rendered, sql=sql, problems=problems, first_line=0)


class MacroCompileError(Exception):
    """A macro that parsed but cannot be compiled (``{% for loop in x %}``): said at the macro's
    file and line as well as at the model that calls it (a change to the macro is where the
    problem is, and the models it breaks were not touched)."""

    def __init__(self, name: str, path: str, line: int | None, detail: str) -> None:
        super().__init__(f"macro {name} ({path}, line {line}) cannot be compiled: {detail}")
        self.path, self.line, self.problem = path, line, f"macro {name} cannot be compiled: {detail}"


class _Return(Exception):
    """dbt's ``return()`` inside a macro: carries the value out of the macro."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


class _Stub(jinja2.ChainableUndefined):
    """Anything unknown (macros, adapter methods, package namespaces): callable, renders empty."""

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self


RUN_STARTED_AT = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
"""What ``run_started_at`` reads as. The engine reads no clock, so a fixed instant: enough for
``run_started_at.strftime('%Y')`` in a var to render a year, where rendering nothing left
``where payment_year = `` and the model unreadable."""


def _time_zone(name: object) -> datetime.tzinfo:
    """``pytz.timezone(name)`` as dbt offers it; an unknown zone reads as UTC."""
    try:
        return ZoneInfo(str(name))
    except (ValueError, KeyError, OSError):
        return datetime.UTC


MODULES = SimpleNamespace(
    datetime=datetime, re=re, itertools=itertools,
    pytz=SimpleNamespace(timezone=_time_zone, utc=datetime.UTC, UTC=datetime.UTC),
)
"""dbt's ``modules`` context: the standard modules models use for dates and text."""


class _Filters(dict):  # type: ignore[type-arg]
    """Known filters, and a pass-through for unknown ones (dbt adapters add their own)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> Callable[..., Any]:
        return lambda value, *args, **kwargs: value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


class _Tests(dict):  # type: ignore[type-arg]
    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: False

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


def _bare_environment() -> jinja2.sandbox.SandboxedEnvironment:
    """A project's Jinja environment before its globals (dbt's context, its macros)."""
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=_Stub,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        keep_trailing_newline=True,
    )
    env.filters = _Filters(env.filters)
    env.tests = _Tests(env.tests)
    return env


_COMPILER = _bare_environment()
"""Compiles the templates of every project: Jinja's compiled code depends on an environment's
settings, filters and tests, which every project's share, and not on its globals, which the code
looks up when it runs."""


@lru_cache(maxsize=8192)
def _template_code(source: str) -> CodeType:
    """A template's compiled code, once per text: both sides of a change hold mostly the same
    models and macros, and compiling is most of what rendering one costs."""
    return _COMPILER.compile(source)  # type: ignore[no-any-return]


class _MacroCode:
    """One macro of a macro file, compiled on its first call: a project defines hundreds of
    macros (tests, materializations, other adapters' versions) and its models call a few."""

    def __init__(self, path: str, macro: jinja2.nodes.Macro) -> None:
        self.path, self.name = path, macro.name
        self._template: jinja2.nodes.Template | None = jinja2.nodes.Template([macro], lineno=1)
        self._code: CodeType | None = None
        if _may_not_compile(macro):
            self.code()  # fails now, as the file is read, like every macro's compilation once did

    def code(self) -> CodeType:
        if self._code is None:
            assert self._template is not None
            self._code = _COMPILER.compile(self._template, filename=self.path)
            self._template = None
        return self._code


def _may_not_compile(macro: jinja2.nodes.Macro) -> bool:
    """A macro whose compiling can fail after it parsed (``{% break %}`` outside a loop is a
    Python syntax error, ``{% extends %}`` and blocks are refused in a macro)."""
    return macro.find(jinja2.nodes.Extends) is not None or any(
        True for _ in macro.find_all((jinja2.nodes.Block, jinja2.nodes.Break, jinja2.nodes.Continue))
    )


@lru_cache(maxsize=8192)  # both sides of a change, every package's macro files
def _macro_code(path: str, text: str) -> tuple[_MacroCode, ...]:
    """The macros of one macro file, each compiled on its own (see ``DbtProject._macros_of``)."""
    return tuple(
        _MacroCode(path, node)
        for node in _COMPILER.parse(text).body
        if isinstance(node, jinja2.nodes.Macro)  # dbt reads only the macros of a macro file
    )


_PLAIN_CALL = re.compile(
    r"\{\{\s*(ref|source)\s*\(\s*(?:'([\w. -]*)'|\"([\w. -]*)\")"
    r"\s*(?:,\s*(?:'([\w. -]*)'|\"([\w. -]*)\")\s*)?\)\s*\}\}"
)
"""``{{ ref('x') }}``, ``{{ source("s", "t") }}``: plain string arguments, nothing to parse."""


@lru_cache(maxsize=16384)
def _expression_program(source: str) -> jinja_subset.Program | None:
    """One ``{{ ... }}`` as a program of :mod:`rules.jinja_subset`, or None when it is not one
    (not valid, or outside the subset: it is then compiled)."""
    plain = _PLAIN_CALL.fullmatch(source)
    if plain is not None:
        name, first, first_quoted, second, second_quoted = plain.groups()
        args = (first if first is not None else first_quoted,)
        if second is not None or second_quoted is not None:
            args += (second if second is not None else second_quoted,)
        return jinja_subset.call(_COMPILER, name, args)
    program = _subset_program(source)
    return program if program is not None and jinja_subset.expression(program) else None


@lru_cache(maxsize=8192)
def _subset_program(source: str) -> jinja_subset.Program | None:
    """A template's parsed tree for :mod:`rules.jinja_subset`, once per text (both sides)."""
    return jinja_subset.prepare(_COMPILER, source)


def _template(env: jinja2.Environment, source: str) -> jinja2.Template:
    """``env.from_string(source)`` with the compiled code shared (:func:`_template_code`)."""
    return env.template_class.from_code(env, _template_code(source), env.make_globals(None))


def _sql_list(values: Any) -> list[str]:
    return [str(v) for v in _as_list(values)]


CROSS_DB_MACROS: dict[str, Callable[..., str]] = {
    "type_string": lambda *a, **k: "varchar",
    "type_int": lambda *a, **k: "integer",
    "type_bigint": lambda *a, **k: "bigint",
    "type_float": lambda *a, **k: "float",
    "type_numeric": lambda *a, **k: "numeric(28, 6)",
    "type_timestamp": lambda *a, **k: "timestamp",
    "type_boolean": lambda *a, **k: "boolean",
    "current_timestamp": lambda *a, **k: "current_timestamp",
    "current_timestamp_backcompat": lambda *a, **k: "current_timestamp",
    "concat": lambda fields, *a, **k: f"concat({', '.join(_sql_list(fields))})",
    "safe_cast": lambda field, type_, *a, **k: f"cast({field} as {type_})",
    "cast": lambda field, type_, *a, **k: f"cast({field} as {type_})",
    "hash": lambda field, *a, **k: f"md5(cast({field} as varchar))",
    "date_trunc": lambda part, date, *a, **k: f"date_trunc('{part}', {date})",
    "dateadd": lambda part, interval, date, *a, **k: f"dateadd({part}, {interval}, {date})",
    "datediff": lambda first, second, part, *a, **k: f"datediff({part}, {first}, {second})",
    "split_part": lambda string, delimiter, part, *a, **k: f"split_part({string}, {delimiter}, {part})",
    "length": lambda expression, *a, **k: f"length({expression})",
    "replace": lambda field, old, new, *a, **k: f"replace({field}, {old}, {new})",
    "position": lambda substring, string, *a, **k: f"position({substring} in {string})",
    "right": lambda string, length, *a, **k: f"right({string}, {length})",
    "any_value": lambda expression, *a, **k: f"any_value({expression})",
    "bool_or": lambda expression, *a, **k: f"bool_or({expression})",
    "listagg": lambda measure, delimiter="','", *a, **k: f"listagg({measure}, {delimiter})",
    "last_day": lambda date, part, *a, **k: f"last_day({date})",
    "escape_single_quotes": lambda expression, *a, **k: str(expression).replace("'", "''"),
    "string_literal": lambda value, *a, **k: "'" + str(value).replace("'", "''") + "'",
    "star": lambda *a, **k: "*",
    "generate_surrogate_key": lambda fields=(), *a, **k: (
        f"md5(concat({', '.join(f'cast({f} as varchar)' for f in _sql_list(fields)) or 'null'}))"
    ),
    "surrogate_key": lambda fields=(), *a, **k: (
        f"md5(concat({', '.join(f'cast({f} as varchar)' for f in _sql_list(fields)) or 'null'}))"
    ),
}
"""dbt's cross-database macros (``dbt.type_string()``, ``dbt.date_trunc(...)``) and the most used
dbt_utils ones, rendered as plain SQL so models that use them still parse. ``star`` renders ``*``:
inference then reads the parent's columns."""


class _MacroNamespace:
    """``dbt.x(...)`` / ``dbt_utils.x(...)``: the known macros above, a stub for anything else."""

    def __init__(self, macros: Mapping[str, Callable[..., str]]) -> None:
        self._macros = macros

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        macro = self._macros.get(name)
        if macro is None:
            return _Stub(name=name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return macro(*args, **kwargs)
            except TypeError:
                return ""

        return call


class _Relation(str):
    """What ``ref``/``source``/``this`` return: renders as the name, with dbt's attributes."""

    def __new__(cls, text: str, identifier: str, schema: str | None = None) -> _Relation:
        obj = super().__new__(cls, text)
        obj.identifier = identifier  # type: ignore[attr-defined]
        obj.name = identifier  # type: ignore[attr-defined]
        obj.table = identifier  # type: ignore[attr-defined]
        obj.schema = schema or "main"  # type: ignore[attr-defined]
        obj.database = "db"  # type: ignore[attr-defined]
        return obj

    def include(self, *args: Any, **kwargs: Any) -> _Relation:
        return self

    def render(self) -> str:
        return str(self)


class _Recorder:
    """The per-model state Jinja calls write into while one model renders."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.depends_on: list[str] = []
        self.this = ""
        self.dynamic = False
        self.unset_vars: list[str] = []


@dataclass
class DbtProject:
    """One dbt project read from a repository, ready to render models on demand."""

    name: str
    folder: str
    dialect: str | None
    vars: Mapping[str, Any]
    models: dict[str, ModelFile]
    relations: dict[str, str]
    """Rendered relation name (lower-case) → fqn; see the module docstring."""
    latest: dict[str, str]
    """Model name → fqn that an unversioned ``ref`` means (the latest version)."""
    folder_configs: Mapping[str, Any]
    sources: dict[str, Asset]
    exposures: dict[str, Exposure]
    groups: dict[str, Group]
    problems: list[ParseProblem]
    macro_files: list[tuple[str, str]]
    seeds: dict[str, Asset] = field(default_factory=dict)
    package_macro_files: list[tuple[str, str, str]] = field(default_factory=list)
    """(package, path, text) of installed packages' macros (``dbt_packages/``, when checked in)."""
    macro_paths: tuple[str, ...] = ("macros",)
    _env: jinja2.Environment | None = None
    _recorder: _Recorder = field(default_factory=_Recorder)
    _context_hash: str | None = None
    _expressions: dict[str, jinja2.Template] = field(default_factory=dict)
    """Compiled ``{{ ... }}`` expressions by their text: see :meth:`_render_expressions`."""
    _context: jinja2.runtime.Context | None = None
    """The context every template's expressions render in: see :meth:`_render_expressions`."""
    _unloadable: set[str] = field(default_factory=set)
    """Macro files that could not be loaded (their problem is said once)."""

    # -- the DAG --------------------------------------------------------------------------------

    def ref_fqn(self, name: str, version: str | None = None) -> str:
        """The fqn ``ref(name[, v=version])`` points to."""
        key = name.lower()
        if version is not None:
            return f"{key}.v{version}"
        return self.latest.get(key, key)

    def dependencies(self, fqn: str) -> tuple[str, ...]:
        model = self.models.get(fqn)
        return model.refs if model is not None else ()

    @property
    def render_context_hash(self) -> str:
        """What, besides a model's own text, its rendering depends on (for the parse cache).
        Hashed once: it covers every macro file's text, and every model's cache key asks for it."""
        if self._context_hash is None:
            self._context_hash = stable_hash(
                self.name, self.dialect or "", self.vars, self.macro_files, sorted(self.latest.items()),
                self.package_macro_files,
            )
        return self._context_hash

    # -- rendering ------------------------------------------------------------------------------

    def render(self, fqn: str) -> Rendered:
        """Render one model's Jinja; failures become ParseProblems with the model's path."""
        model = self.models[fqn]
        if model.kind == "python":  # a dbt Python model: no SQL to read; its YAML says the rest
            return Rendered(sql="", config={}, depends_on=model.refs)
        simple = self._render_simple(model)
        rendered = simple if simple is not None else self.render_jinja(fqn)
        if model.kind == "snapshot":
            rendered = _as_snapshot(rendered, model.line)
        return rendered

    def render_jinja(self, fqn: str) -> Rendered:
        """Render through Jinja with dbt's context stubbed."""
        model = self.models[fqn]
        env = self._environment()
        recorder = self._recorder
        self._reset_recorder()
        recorder.this = render_relation(self._relation_name(fqn), self.dialect)
        problems: list[ParseProblem] = []
        try:
            pieces = self._render_expressions(model.raw_sql)
            if pieces is None:
                self._reset_recorder()
                pieces = self._render_subset(model.raw_sql)
            if pieces is None:
                self._reset_recorder()
                pieces = _template(env, model.raw_sql).render()
            sql = pieces
        except jinja2.TemplateSyntaxError as exc:
            problems.append(ParseProblem(model.path, f"Jinja syntax error: {exc.message}", exc.lineno))
            sql = ""
        except _Return as ret:
            sql = str(ret.value)
        except MacroCompileError as exc:
            problems.append(ParseProblem(model.path, f"Jinja rendering failed: {exc}", None))
            problems.append(ParseProblem(exc.path, exc.problem, exc.line))
            sql = ""
        except Exception as exc:  # noqa: BLE001 (user templates can fail in any way)
            problems.append(
                ParseProblem(
                    model.path, f"Jinja rendering failed: {type(exc).__name__}: {exc}", _template_line(exc)
                )
            )
            sql = ""
        depends = tuple(dict.fromkeys(recorder.depends_on)) if not problems else model.refs
        return Rendered(
            sql=sql.strip(),
            config=dict(recorder.config),
            depends_on=depends,
            problems=tuple(problems),
            first_line=_first_line(model.raw_sql, sql) if sql.strip() else 0,
            dynamic=recorder.dynamic or DYNAMIC_MARKER in sql,
            unset_vars=tuple(dict.fromkeys(recorder.unset_vars)),
        )

    def _render_simple(self, model: ModelFile) -> Rendered | None:
        """Most models use Jinja only for ``{{ ref(...) }}`` and ``{{ source(...) }}``: substitute
        those directly (compiling a Jinja template costs ~6 ms a model). None when the template
        uses anything else, so Jinja renders it."""
        raw = model.raw_sql
        if "{%" in raw or "{#" in raw:
            return None
        depends: list[str] = []
        out: list[str] = []
        last = 0
        for match in _EXPRESSION_RE.finditer(raw):
            inner = match.group(1)
            if inner.startswith("-") or inner.endswith("-"):
                return None  # whitespace control: leave it to Jinja
            inner = inner.strip()
            ref = _REF_RE.fullmatch(inner)
            if ref is not None:
                fqn = self.ref_fqn(ref.group(4) or ref.group(2), ref.group(5))
                relation = self._relation_name(fqn)
            else:
                source = _SOURCE_RE.fullmatch(inner)
                if source is None:
                    return None
                fqn = relation = f"{source.group(2)}.{source.group(4)}".lower()
            depends.append(fqn)
            out.append(raw[last : match.start()])
            out.append(render_relation(relation, self.dialect))
            last = match.end()
        if "{{" in raw[last:] or "}}" in raw[last:]:
            return None
        out.append(raw[last:])
        sql = "".join(out)
        return Rendered(
            sql=sql.strip(),
            config={},
            depends_on=tuple(dict.fromkeys(depends)),
            first_line=_first_line(raw, sql),
        )

    def _render_expressions(self, raw: str) -> str | None:
        """A template of plain text and ``{{ ... }}`` expressions (no ``{% %}`` block, no
        comment, no whitespace control) renders as its text with each expression rendered in
        turn: the same output as the whole template, but each distinct expression is parsed
        once (and walked, :mod:`rules.jinja_subset`, or else compiled once per project), where
        compiling each model's template cost ~5 ms (most models share their few expressions:
        ``config(...)``, ``ref(...)``, ``dbt.type_string()``). None when the template is not of
        that shape, or an expression fails to compile or to render: the whole template is then
        rendered as Jinja, for its exact output or error and line."""
        if "{%" in raw or "{#" in raw or "\r" in raw:
            return None
        env = self._environment()
        out: list[str] = []
        last = 0
        context = self._context
        for match in _EXPRESSION_RE.finditer(raw):
            inner = match.group(1)
            if inner.startswith(("-", "+")) or inner.endswith("-"):
                return None
            text = raw[last : match.start()]
            if "}}" in text:
                return None
            out.append(text)
            source = match.group(0)
            try:
                if context is None:
                    # one context for every template's expressions: making one copies every
                    # global (each macro of the project), and an expression sets nothing in it
                    context = self._context = jinja2.runtime.new_context(
                        env, None, {}, globals=env.make_globals(None)
                    )
                program = _expression_program(source)
                if program is not None:
                    out.append(jinja_subset.render_in(program, env, context))
                else:
                    template = self._expressions.get(source)
                    if template is None:
                        template = self._expressions[source] = _template(env, source)
                    out.append(env.concat(template.root_render_func(context)))  # type: ignore[attr-defined]
            except _Return:
                return None
            except Exception:  # noqa: BLE001 (the whole template's rendering reports it, with its line)
                return None
            last = match.end()
        rest = raw[last:]
        if "{{" in rest or "}}" in rest:
            return None
        out.append(rest)
        return "".join(out)

    def _render_subset(self, raw: str) -> str | None:
        """A template of statements dbt models commonly hold (``{% set %}``, ``{% if %}``, simple
        ``{% for %}``, ``{% do %}``) rendered by walking its parsed tree (:mod:`rules.jinja_subset`),
        the same output as compiling it, which costs ~5-10 ms a template. None when the template
        holds anything else, or its rendering fails or returns: the whole template is then
        rendered as Jinja, for its exact output or error and line."""
        if "{%" not in raw and "{#" not in raw and "{{" not in raw:
            return None
        program = _subset_program(raw)
        if program is None:
            return None
        try:
            return jinja_subset.render(program, self._environment())
        except _Return:
            return None
        except Exception:  # noqa: BLE001 (the whole template's rendering reports it, with its line)
            return None

    def _reset_recorder(self) -> None:
        """Forget what the last rendering recorded (one about to start, or to be redone)."""
        recorder = self._recorder
        recorder.config = {}
        recorder.depends_on = []
        recorder.dynamic = False
        recorder.unset_vars = []

    def _relation_name(self, fqn: str) -> str:
        model = self.models.get(fqn)
        if model is not None and model.version is not None:
            return f"{model.name}_v{model.version}"
        return fqn

    def _environment(self) -> jinja2.Environment:
        if self._env is not None:
            return self._env
        env = _bare_environment()
        recorder = self._recorder
        dialect = self.dialect

        def ref(*args: Any, **kwargs: Any) -> _Relation:
            names = [a for a in args if isinstance(a, str)]
            name = names[-1] if names else str(kwargs.get("name", ""))
            version = kwargs.get("v", kwargs.get("version"))
            fqn = self.ref_fqn(name, None if version is None else str(version))
            recorder.depends_on.append(fqn)
            relation = self._relation_name(fqn)
            return _Relation(render_relation(relation, dialect), relation)

        def source(source_name: str, table_name: str) -> _Relation:
            fqn = f"{source_name}.{table_name}".lower()
            recorder.depends_on.append(fqn)
            return _Relation(render_relation(fqn, dialect), table_name, source_name)

        def config(*args: Any, **kwargs: Any) -> str:
            for arg in args:
                if isinstance(arg, Mapping):
                    recorder.config = merge_config(recorder.config, arg)
            recorder.config = merge_config(recorder.config, kwargs)
            return ""

        config.get = lambda key, default=None: recorder.config.get(key, default)  # type: ignore[attr-defined]
        config.require = lambda key: recorder.config.get(key)  # type: ignore[attr-defined]

        rendering_vars: set[str] = set()
        rendered_vars: dict[str, Any] = {}
        """Vars rendered once per project: Jinja in dbt_project.yml sees no model's context."""

        def var(name: str, default: Any = None) -> Any:
            if name in rendered_vars:
                return rendered_vars[name]
            if name in self.vars and name not in rendering_vars:
                rendering_vars.add(name)  # a var whose Jinja reads itself renders as written
                try:
                    rendered_vars[name] = _render_value(env, self.vars[name])
                    return rendered_vars[name]
                finally:
                    rendering_vars.discard(name)
            if default is None and name not in self.vars:
                recorder.unset_vars.append(str(name))
            return default if default is not None else _Stub(name=name)

        def env_var(name: str, default: Any = "") -> Any:
            return default

        def do_return(value: Any = None) -> Any:
            raise _Return(value)

        def asks_warehouse() -> None:
            recorder.dynamic = True

        def from_warehouse(macro: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                asks_warehouse()
                return macro(*args, **kwargs)

            return call

        package_macros = {
            name: from_warehouse(macro) if name in WAREHOUSE_CALLS else macro
            for name, macro in PACKAGE_MACROS.items()
        }

        def run_query(*args: Any, **kwargs: Any) -> None:
            asks_warehouse()
            return None

        def this() -> _Relation:
            return _Relation(recorder.this, recorder.this)

        # a plain dict, as dbt's own target is: Jinja reads ``target.name`` from it, and
        # ``toyaml(target)`` / ``tojson(target)`` print its fields rather than an object's repr
        target = {
            "name": "dev", "type": dialect or "postgres", "schema": "main", "database": "db",
            "profile_name": "default", "threads": 1,
        }

        env.globals.update(
            ref=ref,
            source=source,
            config=config,
            var=var,
            env_var=env_var,
            is_incremental=lambda: False,
            should_full_refresh=lambda: False,
            run_query=run_query,
            statement=lambda *a, **k: "",
            load_result=lambda *a, **k: None,
            log=lambda *a, **k: "",
            print=lambda *a, **k: "",
            exceptions=_Stub(),
            adapter=Adapter(dialect, self._dispatch_lookup, asks_warehouse, _Stub()),
            api=Api(),
            dbt_utils=_MacroNamespace({**CROSS_DB_MACROS, **CROSS_DATABASE_MACROS, **package_macros}),
            dbt=_MacroNamespace({**CROSS_DB_MACROS, **CROSS_DATABASE_MACROS}),
            target=target,
            execute=False,
            flags=_Stub(),
            builtins=_MacroNamespace({"ref": ref, "source": source, "config": config}),
            invocation_id="tessera",
            run_started_at=RUN_STARTED_AT,
            modules=MODULES,
            fromjson=lambda text, default=None: json.loads(text) if isinstance(text, str) else default,
            tojson=lambda value, *a, **k: json.dumps(value, default=str),
            fromyaml=lambda text, default=None: yaml.safe_load(text) if isinstance(text, str) else default,
            toyaml=lambda value, *a, **k: yaml.safe_dump(value),
            zip=zip,
            set=set,
            local_md5=lambda text: hashlib.md5(str(text).encode()).hexdigest(),  # noqa: S324
            model=_Stub(),
            graph=_Stub(),
        )
        namespace = _MacroNamespace({**CROSS_DB_MACROS, **CROSS_DATABASE_MACROS})
        for macro_name in CROSS_DB_MACROS:
            if macro_name.startswith("type_") or macro_name in (
                "current_timestamp",
                "dateadd",
                "datediff",
                "date_trunc",
            ):
                env.globals.setdefault(macro_name, getattr(namespace, macro_name))
        env.globals["return"] = do_return
        env.globals["this"] = _ThisProxy(recorder)
        self._env = env
        self._load_macros(env)
        return env

    def _load_macros(self, env: jinja2.Environment) -> None:
        """Project macros become globals (and ``project_name.macro``, as dbt has them), an
        installed package's macros ``package.name`` (and names its own macros call unqualified).
        Best-effort: a file that fails to load is skipped with a problem. For dbt_utils, the built-in renderings of the macros that need
        the warehouse (``star``, ``pivot``...) stay: dbt's own versions render ``*`` or nothing
        without one."""
        packages: dict[str, dict[str, Callable[..., Any]]] = {}
        for package, path, text in self.package_macro_files:
            own = packages.setdefault(package, {})
            own.update(self._macros_of(env, path, text, own))
        for package, macros in packages.items():
            current = env.globals.get(package)
            builtins = dict(current._macros) if isinstance(current, _MacroNamespace) else {}
            keep = {n: m for n, m in builtins.items() if n in PACKAGE_MACROS}
            env.globals[package] = _MacroNamespace({**builtins, **macros, **keep})
        own_macros: dict[str, Callable[..., Any]] = {}
        for path, text in self.macro_files:
            found = self._macros_of(env, path, text, {})
            env.globals.update(found)
            own_macros.update(found)
        env.globals.setdefault(self.name, _MacroNamespace(own_macros))

    def check_macro_files(self) -> None:
        """Read the project's own macro files now (not an installed package's: those are read
        when a model first renders), so that one that cannot be loaded is a problem of the
        project whether or not any model renders through Jinja."""
        for path, text in self.macro_files:
            self._macro_codes(path, text)

    def _macros_of(
        self, env: jinja2.Environment, path: str, text: str, scope: dict[str, Callable[..., Any]]
    ) -> dict[str, Callable[..., Any]]:
        """The macros of one file, each compiled on its own as dbt does, so that a call from one
        macro to another goes through the globals (or ``scope``, a package's own macros) and a
        ``return()`` ends the callee only: compiled together, Jinja would call its own unwrapped
        copy and the return would end the caller."""
        return {code.name: _LazyMacro(env, code, scope) for code in self._macro_codes(path, text)}

    def _macro_codes(self, path: str, text: str) -> tuple[_MacroCode, ...]:
        """The file's macros; none, and a problem of the project (said once), when it cannot be loaded."""
        try:
            return _macro_code(path, text)
        except Exception as exc:  # noqa: BLE001
            if path not in self._unloadable:
                self._unloadable.add(path)
                line = exc.lineno if isinstance(exc, jinja2.TemplateSyntaxError) else None
                self.problems.append(ParseProblem(path, f"macro file could not be loaded: {exc}", line))
            return ()

    def _dispatch_lookup(self, name: str, package: str | None) -> Callable[..., Any] | None:
        """A macro by name: in the root project (``package`` None), or in ``package``."""
        env = self._environment()
        if package is None:
            found = env.globals.get(name)
            return found if callable(found) and not isinstance(found, (_Stub, _MacroNamespace)) else None
        if package == self.name:
            # the project's own macros are found as globals (above); by its name, dispatch's last
            # resort would find the dispatching macro itself and call it forever
            return None
        namespace = env.globals.get(package)
        if isinstance(namespace, _MacroNamespace):
            return namespace._macros.get(name)
        return None

    # -- assets ---------------------------------------------------------------------------------

    def model_config(self, fqn: str, rendered: Rendered | None) -> dict[str, Any]:
        """Folder configs < YAML ``config:`` (and top-level property keys) < in-SQL ``config()``."""
        model = self.models[fqn]
        config: dict[str, Any] = {}
        tree: Any = self.folder_configs
        for part in (self.name, *model.folder_fqn, model.name):
            if not isinstance(tree, Mapping):
                break
            config = merge_config(config, {k: v for k, v in tree.items() if _is_config_key(k, v)})
            tree = tree.get(part)
        if isinstance(tree, Mapping):
            config = merge_config(config, {k: v for k, v in tree.items() if _is_config_key(k, v)})
        props = model.properties
        for key in ("access", "group", "meta", "tags", "docs"):  # older top-level property form
            if key in props:
                config = merge_config(config, {key: props[key]})
        config = merge_config(config, _as_dict(props.get("config")))
        if rendered is not None:
            config = merge_config(config, rendered.config)
        return config

    def asset(self, fqn: str, rendered: Rendered | None = None) -> Asset:
        """The model as an Asset; without ``rendered`` only its YAML and raw SQL are used."""
        model = self.models[fqn]
        props = model.properties
        config = self.model_config(fqn, rendered)
        meta = _as_dict(config.get("meta"))
        tessera = _as_dict(meta.get("tessera"))
        group = config.get("group") if isinstance(config.get("group"), str) else None
        owner = _owner(tessera, self.groups.get(group) if group else None, meta)
        contract = config.get("contract")
        enforced = bool(contract.get("enforced")) if isinstance(contract, Mapping) else bool(contract)
        columns = _columns(props.get("columns"), self.dialect, model.raw_sql, enforced)
        constraints = _model_constraints(props)
        unique_key = tuple(str(k).lower() for k in _as_list(config.get("unique_key")) if isinstance(k, str))
        compatibility = tessera.get("compatibility")
        latest = props.get("latest_version")
        deprecation = props.get("deprecation_date")
        depends = rendered.depends_on if rendered is not None and not rendered.problems else model.refs
        checksum = stable_hash(model.raw_sql, _plain(props), _plain(config))
        if model.properties_path:  # where YAML-property findings point (engine meta, not the user's)
            meta = {**meta, PROPERTIES_AT: [model.properties_path, line_of(props) or 1]}
        return Asset(
            fqn=fqn,
            kind="snapshot" if model.kind == "snapshot" else "model",
            path=model.path,
            line=model.line,
            columns=columns,
            columns_known=bool(columns) and not model.unreadable,
            dialect=self.dialect,
            sql=(rendered.sql or None) if rendered is not None else None,
            materialized="snapshot" if model.kind == "snapshot" else _materialized(config, model.kind),
            name=model.name,
            owner=owner,
            group=group,
            access=str(config.get("access") or "protected"),
            contract_enforced=enforced,
            version=model.version,
            latest_version=None if latest is None else str(latest),
            deprecation_date=None if deprecation is None else str(deprecation),
            compatibility=compatibility.lower() if isinstance(compatibility, str) else None,
            description=str(props.get("description") or ""),
            tags=tuple(str(t) for t in _as_list(config.get("tags"))),
            meta=meta,
            constraints=constraints,
            unique_key=unique_key,
            depends_on=tuple(dict.fromkeys(depends)),
            enabled=config.get("enabled", True) is not False,
            package=self.name,
            checksum=checksum,
            relation=self._warehouse_relation(fqn, config),
        )

    def _warehouse_relation(self, fqn: str, config: Mapping[str, Any]) -> str:
        """The rendered name, with a configured ``schema`` and ``alias`` in front of / instead of it,
        so moving the relation (dashboards read it by name) shows in the diff. A versioned model's
        alias is left out: rendered refs name it ``m_v2`` and must keep resolving."""
        name = self._relation_name(fqn)
        alias, schema = config.get("alias"), config.get("schema")
        if isinstance(alias, str) and alias.strip() and self.models[fqn].version is None:
            name = alias.strip().lower()
        if isinstance(schema, str) and schema.strip():
            name = f"{schema.strip().lower()}.{name}"
        return name


class _ThisProxy(_Relation):
    """``{{ this }}`` renders as the current model's name (the recorder changes per model)."""

    def __new__(cls, recorder: _Recorder) -> _ThisProxy:
        obj = str.__new__(cls, "")
        obj._recorder = recorder  # type: ignore[attr-defined]
        return obj

    def __str__(self) -> str:
        return self._recorder.this  # type: ignore[attr-defined,no-any-return]

    def __html__(self) -> str:
        return str(self)

    @property
    def identifier(self) -> str:  # type: ignore[override]
        return str(self)

    @property
    def name(self) -> str:  # type: ignore[override]
        return str(self)


def _render_value(env: jinja2.Environment, value: Any) -> Any:
    """A ``vars:`` value as dbt renders it: Jinja in strings (in lists and mappings too) rendered;
    a string that fails to render is kept as written."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        try:
            return env.from_string(value).render()
        except Exception:  # noqa: BLE001 (user Jinja can fail in any way; the raw text is the answer)
            return value
    if isinstance(value, Mapping):
        return {k: _render_value(env, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(env, v) for v in value]
    return value


class _LazyMacro:
    """One compiled macro, instantiated on its first call: Jinja resolves the names a macro
    calls when its module is made, and by the first call every macro of the project is known."""

    def __init__(self, env: jinja2.Environment, code: _MacroCode, scope: Mapping[str, Any]) -> None:
        self._env, self._code, self._name, self._scope = env, code, code.name, scope
        self._macro: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._macro is None:
            try:
                code = self._code.code()
            except jinja2.TemplateSyntaxError as exc:
                raise MacroCompileError(self._name, self._code.path, exc.lineno, str(exc.message)) from None
            template = self._env.template_class.from_code(self._env, code, self._env.make_globals(dict(self._scope)))
            # the template's context, not its module: Jinja exports no ``_private`` name, and dbt
            # projects call their own helper macros by such names
            context = template.new_context()
            for _ in template.root_render_func(context):
                pass
            self._macro = _returning(context.vars[self._name])
        return self._macro(*args, **kwargs)


def _returning(macro: jinja2.runtime.Macro) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return macro(*args, **kwargs)
        except _Return as ret:
            return ret.value

    return call


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja rewrites tracebacks to templates)."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_MAPPING_CONFIGS = frozenset(
    {"meta", "contract", "docs", "persist_docs", "grants", "labels", "column_types", "partition_by"}
)


def _is_config_key(key: Any, value: Any) -> bool:
    """In ``models:`` of dbt_project.yml, ``+x`` is always a config; a bare known name is one
    unless it holds a folder (a mapping where the config takes none)."""
    if not isinstance(key, str):
        return False
    if key.startswith("+"):
        return True
    if key not in MODEL_CONFIG_KEYS:
        return False
    return not isinstance(value, Mapping) or key in _MAPPING_CONFIGS


def _plain(value: Any) -> Any:
    """YAML values as plain JSON-able data (for hashing)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _owner(tessera: Mapping[str, Any], group: Group | None, meta: Mapping[str, Any]) -> str | None:
    """DESIGN.md's order: meta.tessera.owner → the group's owner → meta.owner."""
    owner = tessera.get("owner")
    if isinstance(owner, str) and owner.strip():
        return owner.strip()
    if group is not None and group.owner:
        return group.owner
    owner = meta.get("owner")
    if isinstance(owner, str) and owner.strip():
        return owner.strip()
    return None


def _test_name_and_args(test: Any) -> tuple[str, Mapping[str, Any]]:
    """``not_null`` / ``{accepted_values: {values: [...]}}`` / ``{name: ..., test_name: ...}``."""
    if isinstance(test, str):
        return test.split(".")[-1], {}
    if isinstance(test, Mapping) and test:
        if "test_name" in test:
            return str(test["test_name"]).split(".")[-1], test
        name, args = next(iter(test.items()))
        args = _as_dict(args)
        if isinstance(args.get("arguments"), Mapping):  # dbt 1.10 `arguments:` form
            args = {**args, **args["arguments"]}
        return str(name).split(".")[-1], args
    return "", {}


@lru_cache(maxsize=4096)  # both sides of a change scan the same files: one scan each
def _column_lines(raw_sql: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per lower-case name: the line of its last ``as <name>`` and of its last mention (a mention
    that ends a select-list item, ``name,`` or ``name`` at the end of a line, wins over one in a
    condition such as ``where status <> 'x'``). Once per text: every declared column of a model
    asks, on both sides of a change (callers only read the dicts)."""
    aliases: dict[str, int] = {}
    words: dict[str, int] = {}
    listed: dict[str, int] = {}
    line = 1
    last = 0
    for match in _WORD_RE.finditer(raw_sql):
        line += raw_sql.count("\n", last, match.start())
        last = match.start()
        if match.group(1):
            aliases[match.group(1).lower()] = line
        else:
            words[match.group(2).lower()] = line
            if _ITEM_END.match(raw_sql, match.end()):
                listed[match.group(2).lower()] = line
    return aliases, {**words, **listed}


_ITEM_END = re.compile(r"[ \t]*(,|\r?\n|$)")


_WORD_RE = re.compile(r"""\bas\s+["`]?([A-Za-z_][A-Za-z0-9_$]*)|([A-Za-z_][A-Za-z0-9_$]*)""", re.IGNORECASE)


def _column_line(raw_sql: str, name: str) -> int | None:
    """Where the column is produced in the model's SQL: the last ``as <name>``, else the last
    whole-word mention. A hint for annotations, not a parse."""
    if not raw_sql:
        return None
    aliases, words = _column_lines(raw_sql)
    key = name.lower()
    return aliases.get(key) or words.get(key)


def _columns(value: Any, dialect: str | None, raw_sql: str, enforced: bool) -> tuple[Column, ...]:
    columns: list[Column] = []
    seen: set[str] = set()
    for position, entry in enumerate(item for item in _as_list(value) if isinstance(item, Mapping)):
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or name.lower() in seen:
            continue
        seen.add(name.lower())
        constraints: list[str] = []
        nullable: bool | None = None
        for constraint in _as_list(entry.get("constraints")):
            kind = str(_as_dict(constraint).get("type", "")).lower()
            if kind == "not_null":
                nullable = False
                constraints.append("not_null")
            elif kind in ("primary_key", "unique"):
                constraints.append(kind)
                if kind == "primary_key":
                    nullable = False
            elif kind == "foreign_key":
                to = _as_dict(constraint).get("to") or _as_dict(constraint).get("expression") or ""
                constraints.append(f"foreign_key:{_ref_text(str(to))}")
            elif kind == "check":
                constraints.append(
                    f"check:{' '.join(str(_as_dict(constraint).get('expression', '')).split())}"
                )
        for test in _as_list(entry.get("data_tests")) + _as_list(entry.get("tests")):
            test_name, args = _test_name_and_args(test)
            if test_name == "not_null":
                nullable = False
                constraints.append("not_null")
            elif test_name == "unique":
                constraints.append("unique")
            elif test_name == "accepted_values":
                values = sorted(str(v) for v in _as_list(args.get("values")))
                constraints.append(f"accepted_values:{','.join(values)}")
            elif test_name == "relationships":
                constraints.append(
                    f"foreign_key:{_ref_text(str(args.get('to', '')))}({args.get('field', '')})"
                )
        data_type = entry.get("data_type")
        config = _as_dict(entry.get("config"))
        meta = {**_as_dict(entry.get("meta")), **_as_dict(config.get("meta"))}
        tags = [*_as_list(entry.get("tags")), *_as_list(config.get("tags"))]
        columns.append(
            Column(
                name=name.strip(),
                type=_norm_type(data_type, dialect) if data_type else UNKNOWN,
                nullable=nullable,
                description=str(entry.get("description") or "").strip(),
                position=position,
                constraints=tuple(dict.fromkeys(constraints)),
                declared_type=bool(data_type),
                tags=tuple(str(t) for t in tags),
                meta=meta,
                line=_column_line(raw_sql, name.strip()),
            )
        )
    return tuple(columns)


def _ref_text(text: str) -> str:
    """``ref('x')`` / ``source('a','b')`` in YAML → the fqn it means; other text lower-cased."""
    match = _REF_RE.search(text)
    if match:
        version = match.group(5)
        name = (match.group(4) or match.group(2)).lower()
        return f"{name}.v{version}" if version else name
    match = _SOURCE_RE.search(text)
    if match:
        return f"{match.group(2)}.{match.group(4)}".lower()
    return text.strip().lower()


def _model_constraints(props: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for constraint in _as_list(props.get("constraints")):
        data = _as_dict(constraint)
        kind = str(data.get("type", "")).lower()
        cols = ",".join(str(c).lower() for c in _as_list(data.get("columns")))
        if kind in ("primary_key", "unique"):
            out.append(f"{kind}({cols})")
        elif kind == "foreign_key":
            target = _ref_text(str(data.get("to") or ""))
            to_cols = ",".join(str(c).lower() for c in _as_list(data.get("to_columns")))
            out.append(f"foreign_key({cols})->{target}({to_cols})")
        elif kind == "check":
            out.append(f"check({' '.join(str(data.get('expression', '')).split())})")
    for test in _as_list(props.get("data_tests")) + _as_list(props.get("tests")):
        name, args = _test_name_and_args(test)
        if name == "unique_combination_of_columns":
            cols = ",".join(sorted(str(c).lower() for c in _as_list(args.get("combination_of_columns"))))
            out.append(f"unique({cols})")
    return tuple(dict.fromkeys(out))


# --- reading the project ----------------------------------------------------------------------


class ContentCache(Protocol):
    """Where parsed files are kept by content id (``rules.build.ParseCache``)."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


def _load_yaml_file(
    source: FileSource, path: str, cache: ContentCache | None
) -> tuple[Any, ParseProblem | None]:
    blob = source.blob_id(path) if cache is not None else None
    key = f"yaml:{blob}:{path}" if blob else None
    if key is not None and cache is not None:
        cached = cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
    text = source.read(path) or ""
    if len(text) > MAX_FILE_CHARS:
        result: tuple[Any, ParseProblem | None] = (None, _too_big(path, text))
    else:
        result = load_yaml(text, path)
    if key is not None and cache is not None:
        cache.put(key, result)
    return result


def read_project(
    source: FileSource, project_dir: str, *, dialect: str | None, cache: ContentCache | None = None
) -> DbtProject:
    """Everything about a project that needs no rendering. Never raises on bad files.

    ``cache`` keeps parsed YAML by blob id, so a warm run re-parses no property file."""
    folder = "" if project_dir in ("", ".") else project_dir.strip("/")
    prefix = f"{folder}/" if folder else ""
    problems: list[ParseProblem] = []
    project_path = f"{prefix}dbt_project.yml"
    project_text = source.read(project_path) or ""
    data, problem = load_yaml(project_text, project_path)
    if problem is not None:
        problems.append(problem)
    problems.extend(_project_jinja_problems(data, project_text, project_path))
    settings = _as_dict(data)
    name = str(settings.get("name") or posixpath.basename(folder) or "project")
    model_paths = [
        str(p).strip("/")
        for p in _as_list(settings.get("model-paths") or settings.get("source-paths") or ["models"])
    ]
    macro_paths = [str(p).strip("/") for p in _as_list(settings.get("macro-paths") or ["macros"])]
    snapshot_paths = [str(p).strip("/") for p in _as_list(settings.get("snapshot-paths") or ["snapshots"])]
    snapshot_files: list[str] = []
    seed_paths = [
        str(p).strip("/")
        for p in _as_list(settings.get("seed-paths") or settings.get("data-paths") or ["seeds"])
    ]
    vars_ = _as_dict(settings.get("vars"))
    project_vars = {k: v for k, v in vars_.items() if not isinstance(v, Mapping) or k != name}
    project_vars.update(_as_dict(vars_.get(name)))
    project_vars.update(_runner_vars(source, folder, name))

    model_sql: dict[str, str] = {}
    yaml_files: list[str] = []
    macro_files: list[tuple[str, str]] = []
    package_macro_files: list[tuple[str, str, str]] = []
    seed_files: list[str] = []
    for path in source.paths():
        if not path.startswith(prefix):
            continue
        rel = path[len(prefix) :]
        if any(part in SKIPPED_FOLDERS for part in rel.split("/")[:-1]):
            package = package_of(path, prefix)
            if package is not None:
                package_macro_files.append((package, path, source.read(path) or ""))
            continue
        if _under(rel, model_paths):
            if rel.endswith((".sql", ".py")):
                model_sql[path] = rel
            elif rel.endswith((".yml", ".yaml")):
                yaml_files.append(path)
        elif _under(rel, macro_paths) and rel.endswith(".sql"):
            macro_files.append((path, source.read(path) or ""))
        elif _under(rel, snapshot_paths):
            if rel.endswith(".sql"):
                snapshot_files.append(path)
            elif rel.endswith((".yml", ".yaml")):
                yaml_files.append(path)
        elif _under(rel, seed_paths):
            if rel.endswith(".csv"):
                seed_files.append(path)
            elif rel.endswith((".yml", ".yaml")):
                yaml_files.append(path)

    model_props: dict[str, tuple[Mapping[str, Any], str]] = {}
    seed_props: dict[str, Mapping[str, Any]] = {}
    snapshot_props: dict[str, Mapping[str, Any]] = {}
    snapshot_yaml: dict[str, str] = {}
    source_entries: list[tuple[Mapping[str, Any], Mapping[str, Any], str]] = []
    exposure_entries: list[tuple[Mapping[str, Any], str]] = []
    semantic_entries: dict[str, list[tuple[Mapping[str, Any], str]]] = {
        "semantic_models": [], "metrics": [], "saved_queries": []
    }
    groups: dict[str, Group] = {}
    for path in sorted(yaml_files):
        doc, problem = _load_yaml_file(source, path, cache)
        if problem is not None:
            problems.append(problem)
            continue
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            problems.append(ParseProblem(path, "a dbt properties file must be a mapping", 1))
            continue
        for entry in _entries(doc, "models", path, problems):
            model_props[str(entry["name"]).lower()] = (entry, path)
        for entry in _entries(doc, "snapshots", path, problems):
            snapshot_props[str(entry["name"]).lower()] = entry
            snapshot_yaml[str(entry["name"]).lower()] = path
        for entry in _entries(doc, "seeds", path, problems):
            seed_props[str(entry["name"]).lower()] = entry
        for entry in _entries(doc, "sources", path, problems):
            for table in _as_list(entry.get("tables")):
                if isinstance(table, Mapping) and isinstance(table.get("name"), str):
                    source_entries.append((entry, table, path))
        for entry in _entries(doc, "exposures", path, problems):
            exposure_entries.append((entry, path))
        for key, found in semantic_entries.items():
            found.extend((entry, path) for entry in _entries(doc, key, path, problems))
        for entry in _entries(doc, "groups", path, problems):
            group = _group(entry)
            groups[group.name] = group

    models: dict[str, ModelFile] = {}
    latest: dict[str, str] = {}
    versioned_files: dict[str, tuple[str, str]] = {}
    for model_name, (entry, _path) in model_props.items():
        versions = [v for v in _as_list(entry.get("versions")) if isinstance(v, Mapping) and "v" in v]
        if not versions:
            continue
        latest_version = entry.get("latest_version")
        if latest_version is None:
            latest_version = max((v["v"] for v in versions), key=_version_key)
        latest[model_name] = f"{model_name}.v{latest_version}"
        for version in versions:
            stem = str(version.get("defined_in") or f"{model_name}_v{version['v']}").lower()
            versioned_files[stem] = (model_name, str(version["v"]))

    stems: dict[str, str] = {}
    for path in sorted(model_sql):
        rel = model_sql[path]
        stem = posixpath.basename(rel).rsplit(".", 1)[0].lower()
        stems.setdefault(stem, path)
    project = DbtProject(
        name=name,
        folder=folder or ".",
        dialect=dialect,
        vars=project_vars,
        models=models,
        relations={},
        latest=latest,
        folder_configs=_as_dict(settings.get("models")),
        sources={},
        exposures={},
        groups=groups,
        problems=problems,
        macro_files=sorted(macro_files),
        package_macro_files=sorted(package_macro_files),
        macro_paths=tuple(macro_paths),
    )

    for path in sorted(model_sql):
        rel = model_sql[path]
        stem = posixpath.basename(rel).rsplit(".", 1)[0].lower()
        text = source.read(path)
        raw = text or ""
        if len(raw) > MAX_FILE_CHARS and len(raw) <= 8 * MAX_FILE_CHARS:
            raw = statement_text(raw)
        unreadable = text is None or len(raw) > MAX_FILE_CHARS
        if text is None:
            problems.append(ParseProblem(path, "the file could not be read as text (binary or too large); not analysed", 1))
        elif len(raw) > MAX_FILE_CHARS:
            problems.append(_too_big(path, raw))
            raw = ""
        rel_in_models = rel.split("/", 1)[1] if "/" in rel else rel
        folder_fqn = tuple(rel_in_models.split("/")[:-1])
        if stem in versioned_files:
            model_name, version = versioned_files[stem]
        elif stem in latest:
            # a versioned model kept in `name.sql`: it is the latest version unless that has a file
            model_name, version = stem, latest[stem].rsplit(".v", 1)[1]
            if any(v == (model_name, version) and f in stems for f, v in versioned_files.items()):
                continue
        else:
            model_name, version = stem, None
        fqn = f"{model_name}.v{version}" if version is not None else model_name
        entry, props_path = model_props.get(model_name, ({}, None))
        properties: Mapping[str, Any] = entry
        if version is not None:
            properties = _version_properties(entry, version)
        if fqn in models:
            problems.append(ParseProblem(path, f"two models are named {fqn!r} (also {models[fqn].path})", 1))
            continue
        models[fqn] = ModelFile(
            fqn=fqn,
            name=model_name,
            path=path,
            raw_sql=raw,
            folder_fqn=folder_fqn,
            version=version,
            properties=properties,
            properties_path=props_path,
            refs=_cheap_refs(raw, project),
            blob_id=source.blob_id(path),
            kind="python" if path.endswith(".py") else "model",
            unreadable=unreadable,
        )
    for path in sorted(snapshot_files):
        raw_file = source.read(path) or ""
        rel = path[len(prefix) :]
        for match in _SNAPSHOT_RE.finditer(raw_file):
            name = match.group(1).lower()
            if name in models:
                problems.append(ParseProblem(path, f"two models or snapshots are named {name!r}", 1))
                continue
            body = match.group(2)
            entry = snapshot_props.get(name, {})
            models[name] = ModelFile(
                fqn=name,
                name=match.group(1),
                path=path,
                raw_sql=body,
                folder_fqn=tuple(rel.split("/")[1:-1]),
                properties=entry,
                properties_path=None,
                refs=_cheap_refs(body, project),
                blob_id=source.blob_id(path),
                kind="snapshot",
                line=raw_file.count("\n", 0, match.start(2)) + 1,
            )
    for name, entry in snapshot_props.items():
        if name in models or "relation" not in entry:
            continue
        snapshot = _yaml_snapshot(name, entry, snapshot_yaml[name], prefix, source, project, problems)
        if snapshot is not None:
            models[name] = snapshot
    for fqn, model in models.items():
        project.relations[project._relation_name(fqn).lower()] = fqn
        if model.version is not None:
            project.relations.setdefault(fqn, fqn)
    model_names = {m.name for m in models.values()}
    for model_name in model_props:
        if model_name not in model_names:
            entry, props_path = model_props[model_name]
            problems.append(
                ParseProblem(
                    props_path or project_path,
                    f"properties for model {model_name!r}, which has no SQL file",
                    line_of(entry),
                )
            )

    for asset in _source_assets(source_entries, source, dialect, cache):
        project.sources[asset.fqn] = asset
        project.relations[asset.fqn] = asset.fqn
    layer = semantic_layer(
        semantic_entries["semantic_models"],
        semantic_entries["metrics"],
        semantic_entries["saved_queries"],
        ref_fqn=project.ref_fqn,
        groups=groups,
        dialect=dialect,
    )
    for reader in layer.readers:
        project.exposures[reader.name] = reader
    for entry, path in exposure_entries:
        exposure = _exposure(entry, path, project, layer)
        project.exposures[exposure.name] = exposure
    seeds_config = _as_dict(settings.get("seeds"))
    for path in seed_files:
        parts = (name, *_seed_folders(path[len(prefix):], seed_paths), posixpath.basename(path)[: -len(".csv")])
        types = project_column_types(seeds_config, parts)
        text = source.read(path) or ""
        value_types = _seed_value_types(source, path, text, dialect, cache)
        asset = _seed_asset(path, text, seed_props, dialect, name, types, value_types)
        project.seeds[asset.fqn] = asset
        project.relations.setdefault(asset.fqn, asset.fqn)
    # the project's own macro files are read now: one that cannot be loaded is a problem of this
    # side (dbt parse fails on it), whether or not a model renders through Jinja
    project.check_macro_files()
    return project


def _project_jinja_problems(data: Any, text: str, path: str) -> list[ParseProblem]:
    """Jinja in ``dbt_project.yml`` values that dbt could not even parse (``{{ env_var('X' }}``).

    Those values are not rendered here, so without this check the broken text would be compared
    as if it were a setting (a MATERIALIZATION_CHANGED to ``{{ ...``); dbt would refuse the whole
    project, so it is a problem on the file, at the value's line, and the rest is still read."""
    problems: list[ParseProblem] = []
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - parsed only, never rendered to HTML

    def visit(value: Any, keys: tuple[str, ...], line: int | None) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                visit(child, (*keys, str(key)), line_of(value) or line)
        elif isinstance(value, list):
            for child in value:
                visit(child, keys, line)
        elif isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value):
            try:
                env.parse(value)
            except jinja2.TemplateSyntaxError as exc:
                where = text.find(value.splitlines()[0]) if value.strip() else -1
                at = text.count("\n", 0, where) + 1 if where >= 0 else line
                problems.append(
                    ParseProblem(path, f"Jinja syntax error in '{'.'.join(keys)}': {exc.message}", at)
                )

    visit(data, (), 1)
    return problems


def is_macro_path(path: str, project: DbtProject) -> bool:
    """Whether ``path`` is (or would be, once added) a macro file of the project or of one of its
    installed packages: decided by where it lies, so both sides of a change agree."""
    prefix = "" if project.folder in ("", ".") else f"{project.folder}/"
    if not path.startswith(prefix) or not path.endswith(".sql"):
        return False
    return _under(path[len(prefix):], list(project.macro_paths)) or package_of(path, prefix) is not None


def _under(rel: str, folders: Sequence[str]) -> bool:
    return any(rel.startswith(f"{f}/") for f in folders if f not in ("", "."))


def _version_key(value: Any) -> tuple[int, str]:
    text = str(value)
    return (int(text), "") if text.isdigit() else (0, text)


def _entries(
    doc: Mapping[str, Any], key: str, path: str, problems: list[ParseProblem]
) -> Iterator[Mapping[str, Any]]:
    value = doc.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        problems.append(ParseProblem(path, f"'{key}:' must be a list", line_of(doc)))
        return
    for entry in value:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and entry["name"].strip():
            yield entry
        else:
            problems.append(ParseProblem(path, f"an entry under '{key}:' has no name", line_of(entry)))


def _version_properties(entry: Mapping[str, Any], version: str) -> Mapping[str, Any]:
    """A version's properties: the model's, with the version entry's columns and config applied
    (``include: all`` / ``exclude:`` as dbt does)."""
    spec: Mapping[str, Any] = {}
    for item in _as_list(entry.get("versions")):
        if isinstance(item, Mapping) and str(item.get("v")) == version:
            spec = item
    merged = LineDict({k: v for k, v in entry.items() if k != "versions"})
    merged.line = line_of(entry)
    for key, value in spec.items():
        if key in ("v", "defined_in", "columns"):
            continue
        if key == "config":
            merged["config"] = merge_config(_as_dict(entry.get("config")), _as_dict(value))
        else:
            merged[key] = value
    if "columns" in spec:
        base_columns = [c for c in _as_list(entry.get("columns")) if isinstance(c, Mapping)]
        columns: list[Any] = []
        for item in _as_list(spec.get("columns")):
            if isinstance(item, Mapping) and "include" in item:
                include = item.get("include")
                exclude = {str(e).lower() for e in _as_list(item.get("exclude"))}
                if include in ("*", "all"):
                    chosen = [c for c in base_columns if str(c.get("name", "")).lower() not in exclude]
                else:
                    wanted = {str(i).lower() for i in _as_list(include)}
                    chosen = [c for c in base_columns if str(c.get("name", "")).lower() in wanted - exclude]
                columns.extend(chosen)
            elif isinstance(item, Mapping):
                columns = [
                    c for c in columns if str(c.get("name", "")).lower() != str(item.get("name", "")).lower()
                ]
                columns.append(item)
        merged["columns"] = columns
    return merged


_RELATION_RE = re.compile(r"\s*(ref|source)\s*\(.*\)\s*\Z", re.DOTALL)


def _materialized(config: Mapping[str, Any], kind: str) -> str | None:
    """The configured materialization; None (unknown) when it is Jinja, which only dbt renders
    in ``dbt_project.yml`` (``"{{ 'table' if target.name == 'prod' else 'view' }}"``): a guess
    would claim a MATERIALIZATION_CHANGED that is not there."""
    value = config.get("materialized")
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return None
    return str(value or ("table" if kind == "python" else "view"))


def _yaml_snapshot(
    name: str,
    entry: Mapping[str, Any],
    path: str,
    prefix: str,
    source: FileSource,
    project: DbtProject,
    problems: list[ParseProblem],
) -> ModelFile | None:
    """A snapshot declared in YAML (dbt 1.9+: ``relation: ref('orders')`` and its ``config``):
    it snapshots every column of that relation, so it reads as ``select *`` from it, as a
    ``{% snapshot %}`` block selecting everything would."""
    relation = entry.get("relation")
    if not isinstance(relation, str) or not _RELATION_RE.match(relation):
        problems.append(
            ParseProblem(
                path,
                f"snapshot {entry['name']!r}: relation must be a ref() or source() call, not {relation!r}",
                line_of(entry),
            )
        )
        return None
    raw = f"select * from {{{{ {relation.strip()} }}}}"
    rel = path[len(prefix) :]
    return ModelFile(
        fqn=name,
        name=str(entry["name"]),
        path=path,
        raw_sql=raw,
        folder_fqn=tuple(rel.split("/")[1:-1]),
        properties=entry,
        properties_path=path,
        refs=_cheap_refs(raw, project),
        blob_id=source.blob_id(path),
        kind="snapshot",
        line=line_of(entry) or 1,
    )


_REF_SCAN = re.compile(_REF_RE.pattern.removeprefix(r"\b"))
_SOURCE_SCAN = re.compile(_SOURCE_RE.pattern.removeprefix(r"\b"))
_WORD_CHAR = re.compile(r"\w")


def _at_word_starts(scan: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``finditer`` of ``\\b`` + ``scan``, found as that would find them: a pattern that starts
    with ``\\b`` gets no literal-prefix search from ``re`` and scanned every file 14x slower."""
    position = 0
    while (match := scan.search(text, position)) is not None:
        start = match.start()
        if start and _WORD_CHAR.match(text, start - 1):  # no word boundary here: look further on
            position = start + 1
            continue
        yield match
        position = max(match.end(), start + 1)


def _cheap_refs(raw_sql: str, project: DbtProject) -> tuple[str, ...]:
    """Upstream fqns from a regex over the raw SQL: the DAG without rendering."""
    found: list[str] = []
    for match in _at_word_starts(_REF_SCAN, raw_sql):
        name = match.group(4) or match.group(2)
        found.append(project.ref_fqn(name, match.group(5)))
    for match in _at_word_starts(_SOURCE_SCAN, raw_sql):
        found.append(f"{match.group(2)}.{match.group(4)}".lower())
    return tuple(dict.fromkeys(found))


def _group(entry: Mapping[str, Any]) -> Group:
    owner = _as_dict(entry.get("owner"))
    meta = {
        **_as_dict(entry.get("meta")),
        **_as_dict(_as_dict(entry.get("config")).get("meta")),
        **_as_dict(owner.get("meta")),
    }
    tessera_owner = _as_dict(meta.get("tessera")).get("owner")
    name = owner.get("name")
    email = owner.get("email")
    best = tessera_owner or email or name
    return Group(
        name=str(entry["name"]),
        owner_name=str(name) if name else None,
        owner_email=str(email) if email else None,
        owner=str(best) if best else None,
    )


def _exposure(entry: Mapping[str, Any], path: str, project: DbtProject, layer: SemanticLayer) -> Exposure:
    owner = _as_dict(entry.get("owner"))
    meta = {**_as_dict(entry.get("meta")), **_as_dict(_as_dict(entry.get("config")).get("meta"))}
    tessera = _as_dict(meta.get("tessera"))
    depends: list[str] = []
    for item in _as_list(entry.get("depends_on")):
        text = str(item)
        match = _REF_RE.search(text)
        if match:
            depends.append(project.ref_fqn(match.group(4) or match.group(2), match.group(5)))
            continue
        match = _SOURCE_RE.search(text)
        if match:
            depends.append(f"{match.group(2)}.{match.group(4)}".lower())
    columns: dict[str, tuple[str, ...]] = {}
    declared = tessera.get("columns")
    if isinstance(declared, Mapping):
        for key, cols in declared.items():
            target = _ref_text(str(key))
            columns[project.latest.get(target, target)] = tuple(str(c) for c in _as_list(cols))
    elif isinstance(declared, list):
        for dep in depends:
            columns[dep] = tuple(str(c) for c in declared)
    for model, read in exposure_metric_reads(_as_list(entry.get("depends_on")), layer).items():
        if model in depends:  # also a plain ref(): it reads the whole model
            continue
        depends.append(model)
        if read is not None:
            columns.setdefault(model, read)
    name_ = owner.get("name")
    email = owner.get("email")
    raw_owner = tessera.get("owner") or email or name_
    return Exposure(
        name=str(entry["name"]),
        depends_on=tuple(dict.fromkeys(depends)),
        owner=str(raw_owner) if raw_owner else None,
        owner_name=str(name_) if name_ else None,
        owner_email=str(email) if email else None,
        type=str(entry.get("type")) if entry.get("type") else None,
        url=str(entry.get("url")) if entry.get("url") else None,
        path=path,
        description=str(entry.get("description") or ""),
        columns=columns,
    )


def _source_assets(
    entries: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], str]],
    source: FileSource,
    dialect: str | None,
    cache: ContentCache | None,
) -> list[Asset]:
    """The source tables declared in property files, in order; a file's tables are kept in
    ``cache`` by its blob id (they depend on nothing else), so the head side of a change, and a
    warm run, rebuild none of the sources in files the change did not touch."""
    by_path: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
    for entry, table, path in entries:
        by_path.setdefault(path, []).append((entry, table))
    assets: list[Asset] = []
    for path, tables in by_path.items():
        blob = source.blob_id(path) if cache is not None else None
        key = f"source-assets:{blob}:{path}:{dialect}" if blob else None
        found = cache.get(key) if key is not None and cache is not None else None
        if not isinstance(found, tuple):
            found = tuple(_source_asset(entry, table, path, dialect) for entry, table in tables)
            if key is not None and cache is not None:
                cache.put(key, found)
        assets.extend(found)
    return assets


def _source_asset(
    entry: Mapping[str, Any], table: Mapping[str, Any], path: str, dialect: str | None
) -> Asset:
    fqn = f"{entry['name']}.{table['name']}".lower()
    meta = {**_as_dict(entry.get("meta")), **_as_dict(table.get("meta"))}
    tessera = _as_dict(meta.get("tessera"))
    owner = tessera.get("owner") or meta.get("owner")
    columns = tuple(
        replace(c, line=line_of(e))
        for c, e in zip(
            _columns(table.get("columns"), dialect, "", False),
            [
                e
                for e in _as_list(table.get("columns"))
                if isinstance(e, Mapping) and isinstance(e.get("name"), str)
            ],
            strict=False,
        )
    )
    compatibility = tessera.get("compatibility")
    return Asset(
        fqn=fqn,
        kind="source",
        path=path,
        line=line_of(table),
        columns=columns,
        columns_known=bool(columns),
        dialect=dialect,
        name=str(table["name"]),
        owner=str(owner) if owner else None,
        compatibility=compatibility.lower() if isinstance(compatibility, str) else None,
        description=str(table.get("description") or ""),
        tags=tuple(str(t) for t in [*_as_list(entry.get("tags")), *_as_list(table.get("tags"))]),
        meta=meta,
        checksum=stable_hash(_plain(entry.get("database")), _plain(entry.get("schema")), _plain(table)),
        relation=".".join(
            str(part)
            for part in (
                entry.get("database"),
                entry.get("schema") or entry["name"],
                table.get("identifier") or table["name"],
            )
            if part
        ),
    )


def _seed_folders(rel: str, seed_paths: Sequence[str]) -> tuple[str, ...]:
    """The folders between a seed's seed path and its file (dbt's fqn parts for its config)."""
    for folder in seed_paths:
        if rel.startswith(f"{folder}/"):
            return tuple(rel[len(folder) + 1 :].split("/")[:-1])
    return ()


def _seed_value_types(
    source: FileSource, path: str, text: str, dialect: str | None, cache: ContentCache | None
) -> dict[str, str]:
    """:func:`csv_column_types` once per file content (by blob id, like the YAML files): it reads
    every value of the seed, and both sides of a change hold mostly the same seeds."""
    blob = source.blob_id(path) if cache is not None else None
    key = f"seed-types:{blob}:{dialect}" if blob else None
    if key is not None and cache is not None:
        cached = cache.get(key)
        if cached is not None:
            return dict(cached)
    types = csv_column_types(text, dialect)
    if key is not None and cache is not None:
        cache.put(key, tuple(types.items()))
    return types


def _seed_asset(
    path: str,
    text: str,
    props: Mapping[str, Mapping[str, Any]],
    dialect: str | None,
    package: str,
    project_types: Mapping[str, str] | None = None,
    value_types: Mapping[str, str] | None = None,
) -> Asset:
    """A seed's table: its CSV header's columns, typed as ``dbt seed`` types them (the
    ``column_types`` config, else what the values are; a YAML ``data_type`` only when the file
    has no rows to tell)."""
    name = posixpath.basename(path)[: -len(".csv")]
    entry = props.get(name.lower(), {})
    column_types = {
        **(project_types or {}),
        **{str(k).lower(): v for k, v in _as_dict(_as_dict(entry.get("config")).get("column_types")).items()},
    }
    if value_types is None:
        value_types = csv_column_types(text, dialect)
    from_values = {k.lower(): v for k, v in value_types.items()}
    header = text.splitlines()[0] if text else ""
    declared = {
        str(c.get("name", "")).lower(): c for c in _as_list(entry.get("columns")) if isinstance(c, Mapping)
    }
    columns = []
    for position, raw in enumerate(h.strip().strip('"') for h in header.split(",") if h.strip()):
        configured = column_types.get(raw.lower())
        documented = _as_dict(declared.get(raw.lower())).get("data_type")
        data_type = configured or from_values.get(raw.lower()) or documented
        columns.append(
            Column(
                name=raw,
                type=_norm_type(str(data_type), dialect) if data_type else UNKNOWN,
                position=position,
                declared_type=bool(configured or documented),
                description=str(_as_dict(declared.get(raw.lower())).get("description") or ""),
            )
        )
    return Asset(
        fqn=name.lower(),
        kind="seed",
        path=path,
        line=1,
        columns=tuple(columns),
        columns_known=bool(columns),
        dialect=dialect,
        materialized="seed",
        name=name,
        description=str(entry.get("description") or ""),
        package=package,
        checksum=stable_hash(header, _plain(entry), sorted(from_values.items()), sorted(column_types.items())),
        relation=name.lower(),
    )


def load_project(source: FileSource, project_dir: str, *, dialect: str) -> Snapshot:
    """A project's models (rendered), sources, seeds, exposures and groups, with declared columns.

    Output columns are not inferred here (``rules.build`` does that in DAG order)."""
    project = read_project(source, project_dir, dialect=dialect)
    snapshot = Snapshot()
    for fqn in project.models:
        rendered = project.render(fqn)
        snapshot.problems.extend(rendered.problems)
        snapshot.assets[fqn] = project.asset(fqn, rendered)
    snapshot.assets.update({k: v for k, v in project.sources.items() if k not in snapshot.assets})
    snapshot.assets.update({k: v for k, v in project.seeds.items() if k not in snapshot.assets})
    snapshot.exposures.update(project.exposures)
    snapshot.groups.update(project.groups)
    snapshot.problems[:0] = project.problems
    return snapshot


def _runner_vars(source: FileSource, folder: str, name: str) -> dict[str, Any]:
    """The vars another project in the repository sets when it runs this one as a ``local:``
    package (a package's own ``integration_tests``, which is how its CI builds it): as dbt does,
    the running project's vars (global, and those scoped to this package's name) win over the
    package's own defaults, so models its defaults disable (``enabled=var('x', false)``) are read
    as that project builds them. When several projects run it (a CI project beside the
    integration tests), the package's interface is everything any of them builds: a var one sets
    truthy (``claims_enabled: true``) wins over another's falsy or missing value; otherwise the
    first project's, by folder, holds."""
    merged: dict[str, Any] = {}
    for found in _each_runners_vars(source, folder, name):
        for key, value in found.items():
            if key not in merged or (not merged[key] and value):
                merged[key] = value
    return merged


def _each_runners_vars(source: FileSource, folder: str, name: str) -> Iterator[dict[str, Any]]:
    """The vars of each project in the repository that runs ``folder`` as a ``local:`` package."""
    for other in find_projects(p for p in source.paths() if p.endswith("dbt_project.yml")):
        runner = "" if other == "." else other
        if runner == folder:
            continue
        locals_: list[str] = []
        for file in ("packages.yml", "dependencies.yml"):
            data, problem = load_yaml(source.read(_join(runner, file)) or "", file)
            packages = _as_dict(data).get("packages") if problem is None else None
            locals_ += [str(p["local"]) for p in _as_list(packages) if isinstance(p, Mapping) and p.get("local")]
        targets = {posixpath.normpath(posixpath.join(runner or ".", local)) for local in locals_}
        if (folder or ".") not in targets:
            continue
        settings, problem = load_yaml(source.read(_join(runner, "dbt_project.yml")) or "", "dbt_project.yml")
        vars_ = _as_dict(_as_dict(settings).get("vars")) if problem is None else {}
        runner_name = str(_as_dict(settings).get("name") or "")
        found = {k: v for k, v in vars_.items() if not (isinstance(v, Mapping) and k in (name, runner_name))}
        found.update(_as_dict(vars_.get(name)))
        yield found
