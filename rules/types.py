"""Column types: one canonical spelling per dialect, and how a type change affects readers.

Types are compared through sqlglot's data types of the configured dialect, so that aliases are
equal (``int``/``integer``/``int4``; ``varchar``/``character varying``; in Snowflake ``number``,
``decimal(38,0)`` and every integer type, which Snowflake stores as ``NUMBER(38,0)``). Case,
whitespace and comments never count. Warehouse defaults fold too, so what a catalog reports equals
what people write: Snowflake ``TIMESTAMP`` is ``TIMESTAMP_NTZ(9)`` and ``VARCHAR`` is
``VARCHAR(16777216)``; DuckDB ignores string lengths; Redshift ``TEXT`` is ``VARCHAR(256)``;
``SERIAL`` is an integer. A type that cannot be parsed is ``UNKNOWN``: the diff then reports at
least ``review``, never a silent ``safe``.

Comparison: ``widened`` when every old value fits the new type, ``narrowed`` when some may not
(types neither of which holds the other, like ``decimal(10,2)`` and ``decimal(38,0)``, narrow
both ways), ``changed`` across families (number, string, date, timestamp, timestamp with time zone,
binary, array, struct...), ``unknown`` when a side is ``UNKNOWN`` and they differ.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache

from sqlglot import exp

from rules.model import UNKNOWN

T = exp.DataType.Type

logging.getLogger("sqlglot").setLevel(logging.ERROR)
"""Every engine path that parses imports this module. sqlglot warns ("Falling back to parsing as
a 'Command'") on what it cannot read; the engine already says so (UNPARSED findings, problems), so
the warning would only be noise on ``tessera check``'s stderr and in the server log."""

SAME = "same"
WIDENED = "widened"
NARROWED = "narrowed"
CHANGED = "changed"
UNKNOWN_CHANGE = "unknown"

_INTEGER_RANK: dict[exp.DataType.Type, int] = {
    T.BIT: 0,
    T.TINYINT: 1,
    T.UTINYINT: 1,
    T.SMALLINT: 2,
    T.USMALLINT: 2,
    T.MEDIUMINT: 3,
    T.UMEDIUMINT: 3,
    T.INT: 4,
    T.UINT: 4,
    T.BIGINT: 5,
    T.UBIGINT: 5,
    T.INT128: 6,
    T.UINT128: 6,
    T.INT256: 7,
    T.UINT256: 7,
}
_INTEGER_DIGITS: dict[int, int] = {0: 1, 1: 3, 2: 5, 3: 7, 4: 10, 5: 19, 6: 39, 7: 77}
_FLOAT_RANK: dict[exp.DataType.Type, int] = {T.FLOAT: 1, T.DOUBLE: 2, T.UDOUBLE: 2}
_DECIMALS = {
    T.DECIMAL,
    T.UDECIMAL,
    T.BIGDECIMAL,
    T.DECIMAL32,
    T.DECIMAL64,
    T.DECIMAL128,
    T.DECIMAL256,
    T.DECFLOAT,
    T.MONEY,
    T.SMALLMONEY,
}
_STRINGS = exp.DataType.TEXT_TYPES
_FIXED_STRINGS = {T.CHAR, T.NCHAR}
_BINARIES = {T.BINARY, T.VARBINARY, T.BLOB, T.LONGBLOB, T.MEDIUMBLOB, T.TINYBLOB}
_DATES = {T.DATE, T.DATE32}
_NAIVE_TIMESTAMPS = {T.TIMESTAMP, T.TIMESTAMPNTZ, T.DATETIME, T.DATETIME2, T.SMALLDATETIME, T.DATETIME64}
_TZ_TIMESTAMPS = {T.TIMESTAMPTZ, T.TIMESTAMPLTZ}
_TIMESTAMP_UNITS = {T.TIMESTAMP_S: 0, T.TIMESTAMP_MS: 3, T.TIMESTAMP_NS: 9}
_UNBOUNDED = 1 << 62


def _dialect(dialect: str | None) -> str | None:
    return (dialect or None) and dialect.lower()


@lru_cache(maxsize=4096)
def _build(text: str, dialect: str | None) -> exp.DataType | None:
    """Parse a type, or None when sqlglot cannot (or it is the unknown type)."""
    cleaned = text.strip()
    if not cleaned or cleaned.upper() == UNKNOWN:
        return None
    try:
        dt = exp.DataType.build(cleaned, dialect=dialect, udt=False)
    except Exception:
        return None
    if not isinstance(dt, exp.DataType) or dt.this in (T.UNKNOWN, T.NULL, T.USERDEFINED):
        return None
    return _canonical(dt, dialect)


_SERIALS = {T.SMALLSERIAL: T.SMALLINT, T.SERIAL: T.INT, T.BIGSERIAL: T.BIGINT}


def _fold_snowflake(node: exp.DataType) -> exp.DataType:
    """Snowflake: integers are NUMBER(38,0), floats one 64-bit FLOAT, TIMESTAMP means
    TIMESTAMP_NTZ, and default lengths/precisions (VARCHAR(16777216), (9)) are not written."""
    if node.this in _INTEGER_RANK or (node.this == T.DECIMAL and not node.expressions):
        return exp.DataType.build("DECIMAL(38, 0)")
    if node.this in _FLOAT_RANK:
        return exp.DataType(this=T.DOUBLE)
    if node.this in (T.VARCHAR, T.TEXT) and _length(node) == 16777216:
        return exp.DataType(this=node.this)
    if node.this in (T.TIMESTAMP, T.DATETIME, T.TIMESTAMPNTZ, T.TIMESTAMPTZ, T.TIMESTAMPLTZ):
        kind = T.TIMESTAMPNTZ if node.this in (T.TIMESTAMP, T.DATETIME) else node.this
        return exp.DataType(this=kind) if _length(node) in (None, 9) else exp.DataType(this=kind, expressions=node.expressions)
    return node


def _fold_duckdb(node: exp.DataType) -> exp.DataType:
    """DuckDB: every string type is VARCHAR, lengths are ignored."""
    if node.this in _STRINGS:
        return exp.DataType(this=T.TEXT)
    return node


def _fold_postgres(node: exp.DataType) -> exp.DataType:
    """Postgres/Redshift: SERIAL types are integers with a default."""
    if node.this in _SERIALS:
        return exp.DataType(this=_SERIALS[node.this])
    return node


def _fold_redshift(node: exp.DataType) -> exp.DataType:
    """Redshift: TEXT and a VARCHAR without length are VARCHAR(256)."""
    node = _fold_postgres(node)
    if node.this in (T.TEXT, T.VARCHAR) and _length(node) is None:
        return exp.DataType.build("VARCHAR(256)")
    return node


_FOLDS: dict[str, Callable[[exp.DataType], exp.DataType]] = {
    "snowflake": _fold_snowflake,
    "duckdb": _fold_duckdb,
    "postgres": _fold_postgres,
    "redshift": _fold_redshift,
}


def _canonical(dt: exp.DataType, dialect: str | None) -> exp.DataType:
    """Fold types a dialect makes one, so that their canonical texts are equal."""
    fold_type = _FOLDS.get(dialect or "")
    if fold_type is None:
        return dt

    def fold(node: exp.Expression) -> exp.Expression:
        return fold_type(node) if isinstance(node, exp.DataType) else node

    folded = dt.transform(fold)
    return folded if isinstance(folded, exp.DataType) else dt


def normalize_type(text: str | None, dialect: str | None) -> str:
    """The canonical spelling of a type in ``dialect``, or ``UNKNOWN`` when it cannot be parsed.

    Two spellings of one type (``integer`` and ``int4``) give the same text, so the diff can
    compare strings.
    """
    if text is None:
        return UNKNOWN
    return _normalize(text, _dialect(dialect))


_SNOWFLAKE_SPELLING = {"TIMESTAMPNTZ": "TIMESTAMP_NTZ", "TIMESTAMPLTZ": "TIMESTAMP_LTZ", "TIMESTAMPTZ": "TIMESTAMP_TZ"}
_GENERIC_SPELLING = {"TIMESTAMPNTZ": "TIMESTAMP_NTZ", "TIMESTAMPLTZ": "TIMESTAMP_LTZ"}
_SPELLING_RE = re.compile(r"\b(TIMESTAMPNTZ|TIMESTAMPLTZ|TIMESTAMPTZ)\b", re.IGNORECASE)


def display_type(text: str | None, dialect: str | None) -> str:
    """A canonical type (``normalize_type``) as people of ``dialect`` write it, for messages:
    sqlglot says ``TIMESTAMPNTZ``, Snowflake's documentation and users ``TIMESTAMP_NTZ``.
    Comparison stays on the canonical text."""
    if not text:
        return UNKNOWN
    spelling = _SNOWFLAKE_SPELLING if _dialect(dialect) == "snowflake" else _GENERIC_SPELLING
    return _SPELLING_RE.sub(lambda m: spelling.get(m.group(1).upper(), m.group(1)), text)


@lru_cache(maxsize=8192)
def _normalize(text: str, dialect: str | None) -> str:
    dt = _build(text, dialect)
    if dt is None:
        return UNKNOWN
    try:
        return dt.sql(dialect=dialect)
    except Exception:
        return UNKNOWN


def _length(dt: exp.DataType, index: int = 0) -> int | None:
    """The numeric parameter at ``index`` (length, precision), ``_UNBOUNDED`` for MAX, else None."""
    if len(dt.expressions) <= index:
        return None
    param = dt.expressions[index]
    value = param.this if isinstance(param, exp.DataTypeParam) else param
    if isinstance(value, exp.Literal) and not value.is_string:
        try:
            return int(value.this)
        except ValueError:
            return None
    if isinstance(value, exp.Var) and value.name.upper() == "MAX":
        return _UNBOUNDED
    return None


def _decimal_shape(dt: exp.DataType, dialect: str | None) -> tuple[int, int]:
    """(integer digits, scale) a decimal can hold; unspecified precision counts as the widest."""
    if dt.this in (T.DECFLOAT, T.BIGDECIMAL):
        return (_UNBOUNDED, _UNBOUNDED)
    precision = _length(dt, 0)
    scale = _length(dt, 1) or 0
    if precision is None:
        # postgres/redshift numeric without precision is arbitrary; others default to (38, 0)-ish
        if dialect in ("postgres", "redshift", None):
            return (_UNBOUNDED, _UNBOUNDED)
        return (38, 0)
    return (precision - scale, scale)


def _string_length(dt: exp.DataType) -> int:
    length = _length(dt)
    if length is None:
        return 1 if dt.this in _FIXED_STRINGS else _UNBOUNDED
    return length


def _timestamp_precision(dt: exp.DataType) -> int:
    if dt.this in _TIMESTAMP_UNITS:
        return _TIMESTAMP_UNITS[dt.this]
    precision = _length(dt)
    return 6 if precision is None else precision


def _order(before: int | tuple[int, ...], after: int | tuple[int, ...]) -> str:
    """widened/narrowed/same for capacities; tuples widen only when every part grows or stays."""
    b = before if isinstance(before, tuple) else (before,)
    a = after if isinstance(after, tuple) else (after,)
    if a == b:
        return SAME
    if all(x >= y for x, y in zip(a, b, strict=True)):
        return WIDENED
    return NARROWED


def _family(dt: exp.DataType) -> str:
    kind = dt.this
    if kind in _INTEGER_RANK or kind in _DECIMALS or kind in _FLOAT_RANK:
        return "number"
    if kind in _STRINGS:
        return "string"
    if kind in _BINARIES:
        return "binary"
    if kind in _DATES:
        return "date"  # a calendar day, not a point in time: see _compare_times
    if kind in _NAIVE_TIMESTAMPS or kind in _TIMESTAMP_UNITS:
        return "naive_time"
    if kind in _TZ_TIMESTAMPS:
        return "tz_time"
    if kind in exp.DataType.ARRAY_TYPES:
        return "array"
    if kind in exp.DataType.STRUCT_TYPES:
        return "struct"
    return kind.value


def _compare_numbers(b: exp.DataType, a: exp.DataType, dialect: str | None) -> str:
    bk, ak = b.this, a.this
    if bk in _INTEGER_RANK and ak in _INTEGER_RANK:
        return _order(_INTEGER_RANK[bk], _INTEGER_RANK[ak])
    if bk in _FLOAT_RANK and ak in _FLOAT_RANK:
        return _order(_FLOAT_RANK[bk], _FLOAT_RANK[ak])
    if bk in _DECIMALS and ak in _DECIMALS:
        return _order(_decimal_shape(b, dialect), _decimal_shape(a, dialect))
    if bk in _INTEGER_RANK and ak in _DECIMALS:
        digits, _scale = _decimal_shape(a, dialect)
        return WIDENED if digits >= _INTEGER_DIGITS[_INTEGER_RANK[bk]] else NARROWED
    if bk in _DECIMALS and ak in _INTEGER_RANK:
        digits, scale = _decimal_shape(b, dialect)
        if scale == 0 and digits <= _INTEGER_DIGITS[_INTEGER_RANK[ak]]:
            return WIDENED
        return NARROWED
    if ak in _FLOAT_RANK:  # integers and decimals fit a float, give or take precision
        return WIDENED
    return NARROWED  # float -> integer/decimal loses the fraction or the range


def _compare_times(b: exp.DataType, a: exp.DataType) -> str:
    """Timestamps of one family by precision. A date is never compared here: every date has a
    midnight timestamp, but readers of a date compare it with dates and date literals, add days
    to it as integers (PostgreSQL, DuckDB, Snowflake refuse that on a timestamp), join it to other
    date columns (BigQuery refuses DATE = TIMESTAMP) and group by it as a day (a BI tool now
    shows times); once the column carries times of day, equality with a date matches nothing.
    So date <-> timestamp is a change in every dialect, not a widening in some."""
    if b.this == T.TIME or a.this == T.TIME:
        return CHANGED
    return _order(_timestamp_precision(b), _timestamp_precision(a))


def _compare_structs(b: exp.DataType, a: exp.DataType, dialect: str | None) -> str:
    def fields(dt: exp.DataType) -> dict[str, exp.DataType]:
        out: dict[str, exp.DataType] = {}
        for e in dt.expressions:
            if isinstance(e, exp.ColumnDef) and isinstance(e.args.get("kind"), exp.DataType):
                out[e.name.lower()] = e.args["kind"]
        return out

    bf, af = fields(b), fields(a)
    if not bf or not af:
        return SAME if b == a else CHANGED
    if not set(bf) <= set(af):
        return CHANGED  # a field readers may use is gone
    result = SAME if set(bf) == set(af) else WIDENED
    for name, btype in bf.items():
        sub = _compare_datatypes(btype, af[name], dialect)
        if sub == SAME:
            continue
        if sub == WIDENED:
            result = WIDENED if result in (SAME, WIDENED) else result
        else:
            return sub if sub in (NARROWED, CHANGED) else CHANGED
    return result


def _compare_datatypes(b: exp.DataType, a: exp.DataType, dialect: str | None) -> str:
    if b.sql(dialect=dialect) == a.sql(dialect=dialect):
        return SAME
    fam_b, fam_a = _family(b), _family(a)
    if fam_b != fam_a:
        return CHANGED  # int -> varchar, date -> int, timestamp -> timestamptz: readers break
    if fam_b == "number":
        return _compare_numbers(b, a, dialect)
    if fam_b in ("string", "binary"):
        result = _order(_string_length(b), _string_length(a))
        if result == SAME and (b.this in _FIXED_STRINGS) != (a.this in _FIXED_STRINGS):
            return WIDENED if b.this in _FIXED_STRINGS else NARROWED
        return result
    if fam_b in ("naive_time", "tz_time"):
        return _compare_times(b, a)
    if fam_b == "date":  # DATE32 holds every DATE and a wider range of days
        return WIDENED if a.this == T.DATE32 else NARROWED
    if fam_b == "array":
        be = b.expressions[0] if b.expressions else None
        ae = a.expressions[0] if a.expressions else None
        if isinstance(be, exp.DataType) and isinstance(ae, exp.DataType):
            return _compare_datatypes(be, ae, dialect)
        return CHANGED
    if fam_b == "struct":
        return _compare_structs(b, a, dialect)
    return CHANGED


def _unparsed_text(text: str) -> str:
    """Text of a type sqlglot cannot parse, with case and whitespace folded (UNKNOWN == empty)."""
    folded = " ".join(text.split()).upper()
    return "" if folded == UNKNOWN else folded


def compare_types(before: str, after: str, dialect: str | None) -> str:
    """How a column's type change affects readers: ``same``, ``widened``, ``narrowed``,
    ``changed`` (incompatible) or ``unknown`` (a side cannot be parsed and they differ)."""
    return _compare(before or "", after or "", _dialect(dialect))


@lru_cache(maxsize=8192)
def _compare(before: str, after: str, dialect: str | None) -> str:
    b = _build(before, dialect)
    a = _build(after, dialect)
    if b is None or a is None:
        if b is None and a is None and _unparsed_text(before) == _unparsed_text(after):
            return SAME
        return UNKNOWN_CHANGE
    return _compare_datatypes(b, a, dialect)
