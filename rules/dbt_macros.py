"""Package macros as dbt renders them, for projects whose ``dbt_packages/`` is not committed.

Real projects call dbt_utils (and dbt's own cross-database ``dbt.*`` macros) everywhere; rendered
as nothing, a model either loses columns (``star(except=...)``) or stops parsing
(``md5(concat(cast( as varchar)))``). Here are SQL renderings of the most used ones:

- macros that only shape SQL (surrogate key, safe arithmetic, date spine, pivot over literal
  values, union of named relations) render to equivalent SQL for any dialect sqlglot reads;
- ``star(from, except=...)`` needs the columns of ``from``, known only once that model is inferred:
  it renders as a placeholder call, ``__tessera_star__('rel', 'alias', 'prefix', 'suffix',
  'except'...)``, which :func:`rules.infer.infer_query` expands against the parent's schema;
- macros that read the warehouse (``get_column_values``, ``get_relations_by_pattern``, a
  ``pivot`` over them) cannot be rendered: they render as a marker that makes the model's columns
  partly unknown (``DYNAMIC_MARKER``), never as nothing.

When a checkout has ``dbt_packages/`` (after ``dbt deps``), the packages' own macro files are
loaded instead (see ``rules.dbt_project``); these renderings are the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

STAR_FUNCTION = "__tessera_star__"
"""The placeholder ``dbt_utils.star`` renders as; inference expands it to the parent's columns."""

UNION_FUNCTION = "__tessera_union__"
"""The placeholder each select of ``dbt_utils.union_relations`` renders with (see there)."""

DYNAMIC_MARKER = "__tessera_dynamic__"
"""An output column a macro that reads the warehouse would have produced (names unknown here)."""


def _quote(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _identifier(name: str) -> str:
    """A column name as dbt's ``pivot`` makes it, readable in every dialect: characters that are
    not letters, digits or ``_`` become ``_`` (dbt quotes them instead; the name is what counts)."""
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", name).lower()
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def _names(values: Any) -> list[str]:
    """Literal names from a Jinja list (or one string); unrenderable values (stubs) are dropped."""
    if values is None or values is False:
        return []
    if isinstance(values, str):
        return [values] if values.strip() else []
    if isinstance(values, Iterable):
        return [str(v) for v in values if isinstance(v, (str, int, float)) and str(v).strip()]
    return []


def star(
    from_: object = "",
    relation_alias: object = False,
    except_: Any = (),
    prefix: object = "",
    suffix: object = "",
    *args: Any,
    **kwargs: Any,
) -> str:
    """``dbt_utils.star(from, relation_alias, except, prefix, suffix)`` as the placeholder call."""
    from_ = kwargs.get("from", from_)
    except_ = kwargs.get("except", except_)
    alias = relation_alias if isinstance(relation_alias, str) else ""
    parts = [str(from_), alias, str(prefix or ""), str(suffix or ""), *_names(except_)]
    return f"{STAR_FUNCTION}({', '.join(_quote(p) for p in parts)})"


def surrogate_key(field_list: Any = (), *args: Any, **kwargs: Any) -> str:
    """``generate_surrogate_key(['a', 'b'])``: md5 over the fields cast to text, as dbt_utils does."""
    fields = _names(kwargs.get("field_list", field_list)) or _names(list(args))
    if not fields:
        return "md5('')"
    parts = ", '-', ".join(f"coalesce(cast({f} as varchar), '_dbt_utils_surrogate_key_null_')" for f in fields)
    return f"md5(concat({parts}))"


def safe_add(field_list: Any = (), *args: Any, **kwargs: Any) -> str:
    fields = _names(kwargs.get("field_list", field_list)) or _names(list(args))
    return " + ".join(f"coalesce({f}, 0)" for f in fields) or "0"


def safe_subtract(field_list: Any = (), *args: Any, **kwargs: Any) -> str:
    fields = _names(kwargs.get("field_list", field_list)) or _names(list(args))
    return " - ".join(f"coalesce({f}, 0)" for f in fields) or "0"


def safe_divide(numerator: object = "null", denominator: object = "null", *args: Any, **kwargs: Any) -> str:
    return f"({kwargs.get('numerator', numerator)}) / nullif({kwargs.get('denominator', denominator)}, 0)"


def date_spine(datepart: object = "day", start_date: object = "null", end_date: object = "null", *args: Any, **kwargs: Any) -> str:
    """One column named ``date_<datepart>`` of dates from start to end (the rows do not matter here)."""
    part = str(kwargs.get("datepart", datepart)).strip("'\" ") or "day"
    start = kwargs.get("start_date", start_date)
    return f"select cast({start} as timestamp) as date_{part}"


def pivot(
    column: object = "",
    values: Any = (),
    alias: bool = True,
    agg: str = "sum",
    cmp: str = "=",
    prefix: str = "",
    suffix: str = "",
    then_value: object = 1,
    else_value: object = 0,
    quote_identifiers: bool = True,
    distinct: bool = False,
    *args: Any,
    **kwargs: Any,
) -> str:
    """``dbt_utils.pivot(column, values, ...)``: one aggregate per literal value; when the values
    come from the warehouse (``get_column_values``) the columns are unknown (the marker)."""
    literal = _names(kwargs.get("values", values))
    if not literal:
        return f"null as {DYNAMIC_MARKER}"
    column = kwargs.get("column", column)
    agg = str(kwargs.get("agg", agg))
    cmp = str(kwargs.get("cmp", cmp))
    prefix, suffix = str(kwargs.get("prefix", prefix) or ""), str(kwargs.get("suffix", suffix) or "")
    then_value, else_value = kwargs.get("then_value", then_value), kwargs.get("else_value", else_value)
    use_alias = kwargs.get("alias", alias)
    out = []
    for value in literal:
        expression = f"{agg}(case when {column} {cmp} {_quote(value)} then {then_value} else {else_value} end)"
        if use_alias:
            expression += f" as {_identifier(f'{prefix}{value}{suffix}')}"
        out.append(expression)
    return ",\n  ".join(out)


def union_relations(relations: Any = (), *args: Any, **kwargs: Any) -> str:
    """``union_relations([...])``: one select per relation, each naming every column of any of
    them (null where a relation lacks it) behind ``_dbt_source_relation``, as dbt_utils builds it.
    The superset of columns is known only once the relations are inferred: each select holds a
    placeholder call, ``__tessera_union__('this', 'all'..., '+include'..., '-exclude'...)``."""
    relations = kwargs.get("relations", relations)
    names = (
        [str(r) for r in relations if str(r).strip()]
        if isinstance(relations, Iterable) and not isinstance(relations, str)
        else []
    )
    if not names:
        return f"select null as {DYNAMIC_MARKER}"
    include = [f"+{n}" for n in _names(kwargs.get("include"))]
    exclude = [f"-{n}" for n in _names(kwargs.get("exclude"))]
    source_column = kwargs.get("source_column_name", "_dbt_source_relation")
    selects = []
    for name in names:
        parts = ", ".join(_quote(p) for p in (name, *names, *include, *exclude))
        lead = f"cast({_quote(name)} as varchar) as {source_column}, " if source_column else ""
        selects.append(f"select {lead}{UNION_FUNCTION}({parts}) from {name}")
    return "\nunion all\n".join(selects)


def dynamic(*args: Any, **kwargs: Any) -> list[str]:
    """A macro that asks the warehouse (``get_column_values``...): nothing is known of its answer."""
    return []


PACKAGE_MACROS: Mapping[str, Callable[..., Any]] = {
    "star": star,
    "generate_surrogate_key": surrogate_key,
    "surrogate_key": surrogate_key,
    "safe_add": safe_add,
    "safe_subtract": safe_subtract,
    "safe_divide": safe_divide,
    "date_spine": date_spine,
    "pivot": pivot,
    "union_relations": union_relations,
    "get_column_values": dynamic,
    "get_relations_by_pattern": dynamic,
    "get_relations_by_prefix": dynamic,
    "get_filtered_columns_in_relation": dynamic,
}
"""dbt_utils macros by name (also reachable unqualified, as dbt resolves a package's macros)."""

WAREHOUSE_CALLS: frozenset[str] = frozenset(
    {"run_query", "get_column_values", "get_relations_by_pattern", "get_relations_by_prefix",
     "get_filtered_columns_in_relation", "get_columns_in_relation"}
)
"""Calls whose answer comes from the warehouse: a model using them has partly unknown columns."""


class Adapter:
    """dbt's ``adapter`` as rendering sees it: ``dispatch`` finds the macro dbt would call
    (``<dialect>__name`` then ``default__name``, the root project's before the package's, then
    the package's built-in rendering); what needs the warehouse reports itself and answers
    nothing; anything else is ``fallback`` (a stub)."""

    def __init__(
        self,
        dialect: str | None,
        lookup: Callable[[str, str | None], Callable[..., Any] | None],
        on_warehouse: Callable[[], None],
        fallback: object,
    ) -> None:
        self._dialect = dialect or "postgres"
        self._lookup = lookup
        self._on_warehouse = on_warehouse
        self._fallback = fallback

    def dispatch(self, macro_name: str, macro_namespace: str | None = None, *args: Any, **kwargs: Any) -> Any:
        namespace = kwargs.get("macro_namespace", macro_namespace)
        namespace = namespace if isinstance(namespace, str) else None
        name = str(kwargs.get("macro_name", macro_name))
        for candidate in (f"{self._dialect}__{name}", f"default__{name}"):
            for where in (None, namespace):
                found = self._lookup(candidate, where)
                if found is not None:
                    return found
        # a built-in rendering goes by the macro's own name (``dbt.dateadd``); never the root
        # project's macro of that name: it is usually the one dispatching, and would call itself
        found = self._lookup(name, namespace) if namespace else None
        return found if found is not None else self._fallback

    def get_columns_in_relation(self, *args: Any, **kwargs: Any) -> list[str]:
        self._on_warehouse()
        return []

    def get_relation(self, *args: Any, **kwargs: Any) -> None:
        self._on_warehouse()
        return None

    def quote(self, identifier: object) -> str:
        return f'"{identifier}"' if self._dialect not in ("bigquery", "databricks", "spark") else f"`{identifier}`"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._fallback, name)


def package_of(path: str, prefix: str) -> str | None:
    """The package a file of an installed package belongs to (``dbt_packages/<pkg>/macros/...``)
    when it is one of its macro files; None otherwise."""
    rel = path[len(prefix):] if path.startswith(prefix) else None
    if rel is None or not rel.endswith(".sql"):
        return None
    parts = rel.split("/")
    if len(parts) >= 4 and parts[0] in ("dbt_packages", "dbt_modules") and parts[2] == "macros":
        return parts[1]
    return None


class _ColumnApi:
    """``api.Column``: the type spellings macros ask for (``translate_type('string')``)."""

    @staticmethod
    def translate_type(dtype: object) -> str:
        return str(dtype)

    @staticmethod
    def string_type(size: object = None) -> str:
        return f"varchar({size})" if isinstance(size, int) else "varchar"

    @staticmethod
    def numeric_type(dtype: object = "numeric", precision: object = None, scale: object = None) -> str:
        if isinstance(precision, int) and isinstance(scale, int):
            return f"{dtype}({precision}, {scale})"
        return str(dtype)


class Api:
    """dbt's ``api`` namespace as far as rendering SQL needs it."""

    Column = _ColumnApi


def _dateadd(datepart: object = "day", interval: object = 0, from_date_or_timestamp: object = "null", *a: Any, **k: Any) -> str:
    return f"dateadd({str(datepart).strip(chr(39))}, {interval}, {from_date_or_timestamp})"


def _datediff(first_date: object = "null", second_date: object = "null", datepart: object = "day", *a: Any, **k: Any) -> str:
    return f"datediff({str(datepart).strip(chr(39))}, {first_date}, {second_date})"


def _date_trunc(datepart: object = "day", date: object = "null", *a: Any, **k: Any) -> str:
    return f"date_trunc('{str(datepart).strip(chr(39))}', {date})"


def _split_part(string_text: object = "''", delimiter_text: object = "''", part_number: object = 1, *a: Any, **k: Any) -> str:
    return f"split_part({string_text}, {delimiter_text}, {part_number})"


def _replace(field: object = "''", old_chars: object = "''", new_chars: object = "''", *a: Any, **k: Any) -> str:
    return f"replace({field}, {old_chars}, {new_chars})"


def _position(substring_text: object = "''", string_text: object = "''", *a: Any, **k: Any) -> str:
    return f"position({substring_text} in {string_text})"


def _right(string_text: object = "''", length_expression: object = 0, *a: Any, **k: Any) -> str:
    return f"right({string_text}, {length_expression})"


def _listagg(measure: object = "null", delimiter_text: object = "','", *a: Any, **k: Any) -> str:
    return f"listagg({measure}, {delimiter_text})"


def _cast(field: object = "null", type: object = "varchar", *a: Any, **k: Any) -> str:  # noqa: A002 (dbt's name)
    return f"cast({field} as {type})"


CROSS_DATABASE_MACROS: Mapping[str, Callable[..., str]] = {
    "dateadd": _dateadd,
    "datediff": _datediff,
    "date_trunc": _date_trunc,
    "split_part": _split_part,
    "replace": _replace,
    "position": _position,
    "right": _right,
    "listagg": _listagg,
    "cast": _cast,
    "safe_cast": _cast,
}
"""dbt's cross-database macros that are called with keyword arguments in real projects
(``dbt.dateadd(datepart='day', interval=1, from_date_or_timestamp='d')``): dbt's own parameter
names, so a keyword call renders instead of failing into nothing."""
