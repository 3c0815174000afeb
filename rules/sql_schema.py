"""The schema state a folder of SQL files (DDL, migrations, views) builds, applied in path order.

Every statement is parsed on its own with the configured dialect, so one statement sqlglot cannot
read becomes a :class:`ParseProblem` with its file and line and the rest still counts. Handled:
CREATE TABLE (columns, types, NOT NULL, DEFAULT, keys, checks), CREATE [MATERIALIZED] VIEW and
CREATE TABLE AS SELECT (columns inferred with :func:`rules.infer.infer_query` against the state so
far), ALTER TABLE (add/drop/rename column, retype, set/drop NOT NULL and DEFAULT, add/drop
constraint, rename table), DROP TABLE/VIEW, CREATE OR REPLACE, COMMENT ON.

Paths: an asset's ``path``/``line`` is the statement that last shaped it (the CREATE, or the
latest ALTER: usually the migration a pull request adds); a column's ``line`` is given when the
statement that last shaped the column is in that same file.

Names: an asset's fqn is its name as written, lower-case: ``schema.name``, ``db.schema.name``
when the SQL names a database, and a bare ``name`` when the SQL gives no schema (we do not guess a
default schema: ``public`` in postgres, the session's in others). A reference from a view to a bare
name finds the one asset of that name in any schema when it is unique.

Renames are recorded so the diff can tell a rename from a drop and an add: a renamed table's
``Asset.meta["renamed_from"]`` and a renamed column's ``Column.meta["renamed_from"]`` hold the old
name (the first one, across chains of renames). ``Asset.meta["dropped_columns"]`` maps a dropped
column's key to the ``[path, line]`` of its DROP, so a removal is reported where it happens.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.tokens import TokenType

from rules.infer import infer_query
from rules.model import UNKNOWN, Asset, Column, Edge, ParseProblem, Snapshot, column_key
from rules.types import normalize_type

_SCHEMA_WORDS = re.compile(r"\b(TABLE|VIEW|COLUMN)\b", re.IGNORECASE)
_HARMLESS_COMMANDS = re.compile(
    r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|TRIGGER|POLICY|RULE)\b"
    r"|ALTER\s+TABLE\s+.*\bRENAME\s+CONSTRAINT\b"
    r"|(GRANT|REVOKE|COMMENT|ANALYZE|VACUUM|REFRESH|CLUSTER|OPTIMIZE|COPY|MSCK)\b)",
    re.IGNORECASE | re.DOTALL,
)
"""Commands sqlglot keeps opaque that cannot change what readers of a table see (function bodies
may mention tables, but defining a function changes no schema)."""
_SCHEMA_VERB = re.compile(
    r"^\s*(?:ALTER|CREATE|DROP|REPLACE|RENAME|TRUNCATE|UNDROP)\s+(?:OR\s+REPLACE\s+)?"
    r"(?:(?:GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED|SECURE|TRANSIENT|EXTERNAL|MATERIALIZED|RECURSIVE"
    r"|UNIQUE|IF|NOT|EXISTS|DEFAULT|FOREIGN|EVENT|TEXT|FILE|NETWORK|MASKING|ROW|RESOURCE)\s+)*([\w.\"`]+)",
    re.IGNORECASE,
)
_OTHER_OBJECTS = frozenset(
    "EXTENSION SEQUENCE ROLE USER PRIVILEGES POLICY SCHEMA DATABASE STAGE WAREHOUSE TYPE FUNCTION "
    "PROCEDURE TRIGGER STREAM TASK SESSION FORMAT PIPE INDEX RULE GROUP ACCOUNT INTEGRATION MONITOR "
    "SHARE TAG SECRET CONNECTION PUBLICATION SUBSCRIPTION SERVER WRAPPER OPERATOR COLLATION DOMAIN "
    "AGGREGATE STATISTICS SEARCH LANGUAGE CAST TRANSFORM OWNED ACCESS DATA MACRO MODEL NOTIFICATION "
    "API ALERT REPLICATION FAILOVER APPLICATION PACKAGE CATALOG VOLUME LOCATION CREDENTIAL PROVIDER "
    "RECIPIENT SNAPSHOT BACKUP CAPABILITY RESERVATION ASSIGNMENT".split()
)
"""What sqlglot may keep as an opaque command without it changing a table or view's columns."""


def _changes_schema(raw: str) -> bool:
    """Whether an opaque command may change what a table's readers see: it names a table, view
    or column, or it creates, alters or drops something that is not one of the other objects a
    warehouse has (a misspelt ``ALTER TABEL t DROP c`` is kept opaque and must not pass unseen)."""
    if _HARMLESS_COMMANDS.match(raw):
        return False
    verb = _SCHEMA_VERB.match(raw)
    if verb is not None:
        return verb.group(1).upper() not in _OTHER_OBJECTS
    return _SCHEMA_WORDS.search(raw) is not None


_SERIAL_TYPES = {exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL}
_DUCKDB_COLUMN_RENAME = re.compile(
    r"\bRENAME\s+(?:COLUMN\s+)?([\w\"`]+)\s+TO\s+([\w\"`]+)\s*;?\s*$", re.IGNORECASE
)


@dataclass
class _ColumnState:
    name: str
    type: str = UNKNOWN
    nullable: bool | None = True
    default: str | None = None
    description: str = ""
    expression: str | None = None
    constraints: list[str] = field(default_factory=list)
    declared_type: bool = True
    line: int | None = None
    path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _RelationState:
    fqn: str
    kind: str
    path: str
    line: int | None
    name: str
    columns: dict[str, _ColumnState] = field(default_factory=dict)
    constraints: dict[str, str] = field(default_factory=dict)
    """Table-level constraints: name (or the text, when unnamed) -> normalised text."""
    materialized: str = "table"
    sql: str | None = None
    description: str = ""
    columns_known: bool = True
    depends_on: tuple[str, ...] = ()
    edges: tuple[Edge, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    definition: list[str] = field(default_factory=list)
    """Normalised text of every statement that shaped it: the checksum's input."""


@dataclass(frozen=True)
class _Statement:
    text: str
    line: int


def split_statements(text: str, dialect: str) -> Iterator[_Statement]:
    """The statements of a file with the line each starts on (comments and blanks skipped)."""
    try:
        tokens = sqlglot.tokenize(text, dialect=dialect)
    except Exception:
        yield from _split_naively(text)
        return
    start = None
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if start is not None:
                yield _Statement(text[start.start : token.start], start.line)
            start = None
            continue
        if start is None:
            start = token
    if start is not None:
        last = tokens[-1]
        yield _Statement(text[start.start : last.end + 1], start.line)


def _split_naively(text: str) -> Iterator[_Statement]:
    """Fallback when the file cannot be tokenized (an unterminated string): split on ``;``."""
    line = 1
    for chunk in text.split(";"):
        stripped = chunk.strip()
        if stripped:
            offset = chunk.index(stripped[0])
            yield _Statement(stripped, line + chunk[:offset].count("\n"))
        line += chunk.count("\n")


def _checksum(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _table_fqn(table: exp.Table) -> str:
    return ".".join(part.name.lower() for part in table.parts if part.name)


def _ident(node: exp.Expression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, exp.Column):
        node = node.this
    if isinstance(node, exp.Identifier):
        return node.this if node.quoted else node.this.lower()
    return node.name.lower()


def _short(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


class _Builder:
    """Applies statements to the schema state, one at a time."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.relations: dict[str, _RelationState] = {}
        self.problems: list[ParseProblem] = []

    # --- helpers ------------------------------------------------------------------------------

    def _sql(self, node: exp.Expression) -> str:
        try:
            return node.sql(dialect=self.dialect, comments=False)
        except Exception:
            return node.sql(comments=False)

    def _canonical(self, node: exp.Expression) -> str:
        """Text of a statement where case (of unquoted names), whitespace and comments vanish."""
        try:
            return self._sql(normalize_identifiers(node.copy(), dialect=self.dialect))
        except Exception:
            return self._sql(node)

    def problem(self, path: str, message: str, line: int | None) -> None:
        self.problems.append(ParseProblem(path=path, message=message, line=line))

    def find(self, table: exp.Table) -> _RelationState | None:
        fqn = self.resolve_name(_table_fqn(table))
        return self.relations.get(fqn) if fqn else None

    def resolve_name(self, written: str) -> str | None:
        """The asset a written name means: exact, else without ``public.``, else a unique bare name."""
        if written in self.relations:
            return written
        parts = written.split(".")
        if len(parts) >= 2 and parts[-2] == "public" and parts[-1] in self.relations:
            return parts[-1]
        if len(parts) == 1:
            matches = [fqn for fqn in self.relations if fqn.rsplit(".", 1)[-1] == written]
            if len(matches) == 1:
                return matches[0]
        else:
            tail = ".".join(parts[-2:])
            matches = [fqn for fqn in self.relations if fqn == tail or fqn.endswith("." + tail)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _resolve_table(self, table: exp.Table) -> str | None:
        return self.resolve_name(_table_fqn(table))

    def schema(self) -> Mapping[str, Mapping[str, str]]:
        """The columns of every relation so far, computed only for the ones a query reads."""
        return _LazySchema(self.relations)

    # --- statements ---------------------------------------------------------------------------

    def apply(self, statement: exp.Expression, path: str, line: int, raw: str) -> None:
        if isinstance(statement, exp.Command):
            self._command(statement, path, line, raw)
        elif isinstance(statement, exp.Create):
            self._create(statement, path, line)
        elif isinstance(statement, exp.Alter):
            self._alter(statement, path, line, raw)
        elif isinstance(statement, exp.Drop):
            self._drop(statement)
        elif isinstance(statement, exp.Comment):
            self._comment(statement)
        elif not isinstance(statement, exp.Query) and isinstance(
            statement, exp.Condition | exp.Alias | exp.Identifier
        ):
            first = " ".join(raw.split())[:80]
            self.problem(path, f"not a SQL statement: {first}", line)
        # INSERT, UPDATE, GRANT, SET, transactions...: no effect on the schema

    def _command(self, statement: exp.Command, path: str, line: int, raw: str) -> None:
        if _changes_schema(raw):
            first = " ".join(raw.split())[:80]
            self.problem(path, f"statement Tessera cannot analyse: {first}", line)

    def _create(self, create: exp.Create, path: str, line: int) -> None:
        kind = (create.args.get("kind") or "").upper()
        if kind not in ("TABLE", "VIEW"):
            return  # indexes, functions, schemas, sequences...
        target = create.this
        schema_node = target if isinstance(target, exp.Schema) else None
        table = schema_node.this if schema_node is not None else target
        if not isinstance(table, exp.Table) or _is_temporary(create):
            return  # temporary tables vanish with the session: nobody downstream reads them
        fqn = _table_fqn(table)
        existing = self.relations.get(fqn)
        if existing is not None and create.args.get("exists") and not create.args.get("replace"):
            return  # CREATE ... IF NOT EXISTS over an existing relation changes nothing
        materialized = "table"
        if kind == "VIEW":
            props = create.args.get("properties")
            is_materialized = bool(
                props and any(isinstance(p, exp.MaterializedProperty) for p in props.expressions)
            )
            materialized = "materialized_view" if is_materialized else "view"
        relation = _RelationState(
            fqn=fqn,
            kind="view" if kind == "VIEW" else "table",
            path=path,
            line=line,
            name=table.name.lower(),
            materialized=materialized,
        )
        relation.definition.append(self._canonical(create))
        description = _comment_property(create)
        if description is not None:
            relation.description = description

        query = create.expression
        if isinstance(query, exp.Query):
            self._from_query(relation, query, path, line, schema_node)
        elif schema_node is not None:
            self._columns_from_schema(relation, schema_node, path, line)
        elif create.args.get("clone") is not None or _like_source(create) is not None:
            source_table = _like_source(create) or create.args["clone"].this
            self._copy_columns(relation, source_table)
        else:
            relation.columns_known = False
        self.relations[fqn] = relation

    def _copy_columns(self, relation: _RelationState, source_table: exp.Expression) -> None:
        """CREATE TABLE ... LIKE / CLONE: the columns and keys of another table."""
        source = self.find(source_table) if isinstance(source_table, exp.Table) else None
        if source is None:
            relation.columns_known = False
            return
        for key, col in source.columns.items():
            relation.columns[key] = _ColumnState(
                **{**col.__dict__, "meta": {}, "constraints": list(col.constraints)}
            )
        relation.constraints.update(source.constraints)

    def _from_query(
        self,
        relation: _RelationState,
        query: exp.Query,
        path: str,
        line: int,
        column_list: exp.Schema | None,
    ) -> None:
        relation.sql = self._sql(query)
        info = infer_query(
            relation.sql,
            dialect=self.dialect,
            schema=self.schema(),
            fqn=relation.fqn,
            resolve=self._resolve_table,
        )
        relation.columns_known = info.columns_known
        relation.depends_on = info.depends_on
        relation.edges = info.edges
        # CREATE VIEW v (a, b) AS SELECT ...: the list names the columns, by position
        names = [_ident(c) for c in column_list.expressions] if column_list is not None else []
        lines = _projection_lines(query, line)
        renamed: dict[str, str] = {}
        for index, column in enumerate(info.columns):
            name = names[index] if index < len(names) else column.name
            if name != column.name:
                renamed[column.name] = name
            relation.columns[column_key(name)] = _ColumnState(
                name=name,
                type=column.type,
                nullable=None,
                expression=column.expression,
                declared_type=False,
                line=lines.get(column.key, line),
                path=path,
            )
        if renamed:
            relation.edges = tuple(
                Edge(e.upstream, e.upstream_column, e.downstream, renamed.get(e.downstream_column or "", e.downstream_column), e.usage)
                for e in relation.edges
            )

    def _columns_from_schema(
        self, relation: _RelationState, schema: exp.Schema, path: str, line: int
    ) -> None:
        for item in schema.expressions:
            if isinstance(item, exp.ColumnDef):
                column = self._column_def(item, path, line)
                relation.columns[column_key(column.name)] = column
            elif isinstance(item, exp.LikeProperty) and isinstance(item.this, exp.Table):
                self._copy_columns(relation, item.this)
            else:
                self._table_constraint(relation, item)

    def _column_def(self, node: exp.ColumnDef, path: str, line: int) -> _ColumnState:
        kind = node.args.get("kind")
        type_text = normalize_type(self._sql(kind), self.dialect) if isinstance(kind, exp.DataType) else UNKNOWN
        ident = node.this
        rel_line = ident.meta.get("line") if isinstance(ident, exp.Identifier) else None
        column = _ColumnState(
            name=_ident(ident),
            type=type_text,
            line=line + rel_line - 1 if isinstance(rel_line, int) else line,
            path=path,
        )
        if isinstance(kind, exp.DataType) and kind.this in _SERIAL_TYPES:
            column.default = "serial"  # an integer that fills itself: never a required column
        for constraint in node.args.get("constraints") or ():
            self._column_constraint(column, constraint)
        return column

    def _column_constraint(self, column: _ColumnState, constraint: exp.Expression) -> None:
        kind = constraint.args.get("kind") if isinstance(constraint, exp.ColumnConstraint) else constraint
        if isinstance(kind, exp.NotNullColumnConstraint):
            column.nullable = bool(kind.args.get("allow_null"))
            if not column.nullable:
                _add(column.constraints, "not_null")
            else:
                _discard(column.constraints, "not_null")
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            column.nullable = False
            _add(column.constraints, "primary_key")
        elif isinstance(kind, exp.UniqueColumnConstraint):
            _add(column.constraints, "unique")
        elif isinstance(kind, exp.DefaultColumnConstraint):
            column.default = self._sql(kind.this) if kind.this is not None else None
        elif isinstance(kind, exp.CheckColumnConstraint):
            _add(column.constraints, f"check:{self._sql(kind.this)}")
        elif isinstance(kind, exp.Reference):
            _add(column.constraints, f"foreign_key:{self._reference(kind)}")
        elif isinstance(kind, exp.CommentColumnConstraint):
            column.description = kind.name
        elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint | exp.AutoIncrementColumnConstraint):
            column.default = column.default or "identity"

    def _reference(self, reference: exp.Reference) -> str:
        target = reference.this
        if isinstance(target, exp.Schema):
            table = target.this
            cols = ",".join(_ident(c) for c in target.expressions)
            name = _table_fqn(table) if isinstance(table, exp.Table) else _ident(table)
            return f"{name}({cols})" if cols else name
        if isinstance(target, exp.Table):
            return _table_fqn(target)
        return self._sql(target)

    def _table_constraint(self, relation: _RelationState, item: exp.Expression) -> None:
        name: str | None = None
        parts = [item]
        if isinstance(item, exp.Constraint):
            name = _ident(item.this)
            parts = list(item.expressions)
        for part in parts:
            text, columns, kind = self._constraint_text(part)
            if text is None:
                continue
            relation.constraints[name or text] = text
            if kind == "primary_key":
                for col in columns:
                    state = relation.columns.get(column_key(col))
                    if state is not None:
                        state.nullable = False
                        if len(columns) == 1:
                            _add(state.constraints, "primary_key")
            elif kind == "unique" and len(columns) == 1:
                state = relation.columns.get(column_key(columns[0]))
                if state is not None:
                    _add(state.constraints, "unique")

    def _constraint_text(self, part: exp.Expression) -> tuple[str | None, list[str], str]:
        """Normalised text of a table-level constraint, its columns and its kind."""
        if isinstance(part, exp.PrimaryKey):
            cols = [_ident(c) for c in part.expressions]
            return f"primary_key({','.join(cols)})", cols, "primary_key"
        if isinstance(part, exp.UniqueColumnConstraint):
            schema = part.this
            cols = [_ident(c) for c in schema.expressions] if isinstance(schema, exp.Schema) else []
            return f"unique({','.join(cols)})", cols, "unique"
        if isinstance(part, exp.ForeignKey):
            cols = [_ident(c) for c in part.expressions]
            ref = part.args.get("reference")
            target = self._reference(ref) if isinstance(ref, exp.Reference) else "?"
            return f"foreign_key({','.join(cols)})->{target}", cols, "foreign_key"
        if isinstance(part, exp.CheckColumnConstraint):
            return f"check({self._sql(part.this)})", [], "check"
        if isinstance(part, exp.PrimaryKeyColumnConstraint | exp.UniqueColumnConstraint):
            return None, [], ""
        return None, [], ""

    def _alter(self, alter: exp.Alter, path: str, line: int, raw: str) -> None:
        table = alter.this
        if not isinstance(table, exp.Table):
            return
        kind = (alter.args.get("kind") or "TABLE").upper()
        if kind not in ("TABLE", "VIEW"):
            return
        relation = self.find(table)
        if relation is None:
            if not alter.args.get("exists"):
                self.problem(path, f"ALTER of {_table_fqn(table)}, which no earlier statement creates", line)
            return
        relation.definition.append(self._canonical(alter))
        relation.path, relation.line = path, line  # the asset now points at its latest change
        for action in alter.args.get("actions") or ():
            self._alter_action(relation, action, path, line, raw)

    def _alter_action(
        self, relation: _RelationState, action: exp.Expression, path: str, line: int, raw: str
    ) -> None:
        if isinstance(action, exp.ColumnDef):
            if action.args.get("exists") and column_key(_ident(action.this)) in relation.columns:
                return
            self._add_column(relation, action, path, line)
        elif isinstance(action, exp.Schema):  # databricks ADD COLUMNS (a int, b string)
            for item in action.expressions:
                if isinstance(item, exp.ColumnDef):
                    self._add_column(relation, item, path, line)
        elif isinstance(action, exp.Drop):
            self._alter_drop(relation, action, path, line)
        elif isinstance(action, exp.RenameColumn):
            self._rename_column(relation, _ident(action.this), _ident(action.args.get("to")), path, line)
        elif isinstance(action, exp.AlterRename):
            match = _DUCKDB_COLUMN_RENAME.search(raw) if self.dialect == "duckdb" else None
            if match and not re.search(r"\bRENAME\s+TO\b", raw, re.IGNORECASE):
                old, new = _strip_quotes(match.group(1)), _strip_quotes(match.group(2))
                self._rename_column(relation, old, new, path, line)
            else:
                self._rename_table(relation, action.this)
        elif isinstance(action, exp.AlterColumn):
            self._alter_column(relation, action, path, line)
        elif isinstance(action, exp.SwapTable) and isinstance(action.this, exp.Table):
            self._swap(relation, action.this, path, line)
        elif isinstance(action, exp.AddConstraint):
            for item in action.expressions:
                self._table_constraint(relation, item)
        elif isinstance(action, exp.Command):
            text = " ".join(self._sql(action).split()).upper()
            if text.startswith("DROP PRIMARY KEY"):
                self._drop_primary_key(relation)
            else:
                first = " ".join(raw.split())[:80]
                self.problem(path, f"ALTER action Tessera cannot analyse: {first}", line)
        # SET OPTIONS / TBLPROPERTIES / owner changes: no effect on readers

    def _add_column(self, relation: _RelationState, node: exp.ColumnDef, path: str, line: int) -> None:
        """ADD COLUMN, at the end or where FIRST / AFTER x puts it."""
        column = self._column_def(node, path, line)
        key = column_key(column.name)
        relation.columns.pop(key, None)
        position = node.args.get("position")
        if not isinstance(position, exp.ColumnPosition):
            relation.columns[key] = column
            return
        where = (position.args.get("position") or "").upper()
        anchor = column_key(_ident(position.this)) if position.this is not None else None
        items = list(relation.columns.items())
        if where == "FIRST":
            index = 0
        elif where == "AFTER" and anchor in relation.columns:
            index = [k for k, _ in items].index(anchor) + 1
        else:
            index = len(items)
        items.insert(index, (key, column))
        relation.columns = dict(items)

    def _alter_drop(
        self, relation: _RelationState, action: exp.Drop, path: str | None = None, line: int | None = None
    ) -> None:
        kind = (action.args.get("kind") or "").upper()
        targets: list[exp.Expression] = []
        for item in action.args.get("tables") or ():
            targets.extend(item.expressions if isinstance(item, exp.Schema) else [item])
        if kind in ("COLUMN", "COLUMNS", ""):
            for target in targets:
                relation.columns.pop(column_key(_ident(target)), None)
                # where the column was dropped, so a COLUMN_REMOVED finding points at the DROP
                relation.meta.setdefault("dropped_columns", {})[column_key(_ident(target))] = [path, line]
                self._forget_column_constraints(relation, column_key(_ident(target)))
        elif kind == "CONSTRAINT":
            for target in targets:
                self._drop_constraint(relation, _ident(target))
        elif kind == "PRIMARY KEY":
            self._drop_primary_key(relation)

    def _forget_column_constraints(self, relation: _RelationState, key: str) -> None:
        for name, text in list(relation.constraints.items()):
            inside = text[text.find("(") + 1 : text.find(")")] if "(" in text else ""
            if key in {c.strip() for c in inside.split(",")}:
                del relation.constraints[name]

    def _drop_primary_key(self, relation: _RelationState) -> None:
        for name, text in list(relation.constraints.items()):
            if text.startswith("primary_key("):
                del relation.constraints[name]
        for column in relation.columns.values():
            _discard(column.constraints, "primary_key")

    def _drop_constraint(self, relation: _RelationState, name: str) -> None:
        """Drop a named constraint; postgres' generated names (t_pkey, t_col_key...) count too."""
        if name in relation.constraints:
            text = relation.constraints.pop(name)
            if text.startswith("primary_key("):
                self._drop_primary_key(relation)
            elif text.startswith("unique(") and "," not in text:
                column = relation.columns.get(text[len("unique(") : -1])
                if column is not None:
                    _discard(column.constraints, "unique")
            return
        table = relation.name
        if name == f"{table}_pkey":
            self._drop_primary_key(relation)
            return
        for suffix, prefix in (("_key", "unique"), ("_fkey", "foreign_key:"), ("_check", "check:")):
            if name.startswith(f"{table}_") and name.endswith(suffix):
                col = column_key(name[len(table) + 1 : -len(suffix)])
                column = relation.columns.get(col)
                if column is not None:
                    column.constraints = [c for c in column.constraints if not c.startswith(prefix)]
                return

    def _rename_column(self, relation: _RelationState, old: str, new: str, path: str, line: int) -> None:
        column = relation.columns.get(column_key(old))
        if column is None or not new:
            return
        column.path, column.line = path, line
        renamed: dict[str, _ColumnState] = {}
        for key, state in relation.columns.items():
            if key == column_key(old):
                state.meta.setdefault("renamed_from", state.name)
                state.name = new
                renamed[column_key(new)] = state
            else:
                renamed[key] = state
        relation.columns = renamed
        for name, text in list(relation.constraints.items()):
            relation.constraints[name] = re.sub(
                rf"(?<=[(,]){re.escape(column_key(old))}(?=[,)])", column_key(new), text
            )
        # views keep reading the renamed column
        for other in self.relations.values():
            other.edges = tuple(
                Edge(e.upstream, new, e.downstream, e.downstream_column, e.usage)
                if e.upstream == relation.fqn and e.upstream_column and column_key(e.upstream_column) == column_key(old)
                else e
                for e in other.edges
            )

    def _rename_table(self, relation: _RelationState, target: exp.Expression) -> None:
        if not isinstance(target, exp.Table):
            return
        old_fqn = relation.fqn
        new_fqn = _table_fqn(target)
        if "." not in new_fqn and "." in old_fqn:  # RENAME TO keeps the schema
            new_fqn = old_fqn.rsplit(".", 1)[0] + "." + new_fqn
        del self.relations[old_fqn]
        relation.meta.setdefault("renamed_from", old_fqn)
        relation.fqn = new_fqn
        relation.name = new_fqn.rsplit(".", 1)[-1]
        relation.edges = tuple(
            Edge(e.upstream, e.upstream_column, new_fqn, e.downstream_column, e.usage) for e in relation.edges
        )
        self.relations[new_fqn] = relation
        # views keep reading the renamed table (warehouses bind views to the relation, not its name)
        for other in self.relations.values():
            if old_fqn in other.depends_on:
                other.depends_on = tuple(new_fqn if d == old_fqn else d for d in other.depends_on)
                other.edges = tuple(
                    Edge(new_fqn if e.upstream == old_fqn else e.upstream, e.upstream_column,
                         e.downstream, e.downstream_column, e.usage)
                    for e in other.edges
                )

    def _swap(self, relation: _RelationState, target: exp.Table, path: str, line: int) -> None:
        """Snowflake's ALTER TABLE a SWAP WITH b: each name now holds the other's table."""
        other = self.find(target)
        if other is None or other is relation:
            return
        first, second = relation.fqn, other.fqn
        for state, fqn in ((relation, second), (other, first)):
            state.fqn, state.name = fqn, fqn.rsplit(".", 1)[-1]
            state.path, state.line = path, line
            state.edges = tuple(
                Edge(e.upstream, e.upstream_column, fqn, e.downstream_column, e.usage) for e in state.edges
            )
            self.relations[fqn] = state

    def _alter_column(self, relation: _RelationState, action: exp.AlterColumn, path: str, line: int) -> None:
        column = relation.columns.get(column_key(_ident(action.this)))
        if column is None:
            return
        column.path, column.line = path, line
        dtype = action.args.get("dtype")
        if isinstance(dtype, exp.DataType):
            column.type = normalize_type(self._sql(dtype), self.dialect)
            column.declared_type = True
        if action.args.get("allow_null") is not None:
            column.nullable = bool(action.args["allow_null"])
            if column.nullable:
                _discard(column.constraints, "not_null")
            else:
                _add(column.constraints, "not_null")
        if action.args.get("default") is not None:
            column.default = self._sql(action.args["default"])
        elif action.args.get("drop") and action.args.get("allow_null") is None:
            column.default = None  # ALTER COLUMN c DROP DEFAULT
        comment = action.args.get("comment")
        if isinstance(comment, exp.Literal):
            column.description = comment.name

    def _drop(self, drop: exp.Drop) -> None:
        kind = (drop.args.get("kind") or "").upper()
        if kind not in ("TABLE", "VIEW", "MATERIALIZED VIEW"):
            return
        for table in drop.args.get("tables") or ():
            if isinstance(table, exp.Table):
                fqn = self._resolve_table(table)
                if fqn:
                    self.relations.pop(fqn, None)

    def _comment(self, comment: exp.Comment) -> None:
        kind = (comment.args.get("kind") or "").upper()
        text = comment.expression.name if isinstance(comment.expression, exp.Literal) else ""
        target = comment.this
        if kind in ("TABLE", "VIEW") and isinstance(target, exp.Table):
            relation = self.find(target)
            if relation is not None:
                relation.description = text
                relation.definition.append(self._canonical(comment))
        elif kind == "COLUMN" and isinstance(target, exp.Column):
            parts = [p.name.lower() for p in target.parts]
            relation = self.relations.get(self.resolve_name(".".join(parts[:-1])) or "")
            if relation is not None:
                column = relation.columns.get(column_key(parts[-1]))
                if column is not None:
                    column.description = text
                    relation.definition.append(self._canonical(comment))

    # --- output -------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        snapshot = Snapshot(problems=list(self.problems))
        for fqn, relation in self.relations.items():
            columns = tuple(
                Column(
                    name=state.name,
                    type=state.type,
                    nullable=state.nullable if relation.kind == "table" else None,
                    default=state.default,
                    description=state.description,
                    position=index,
                    expression=state.expression,
                    constraints=tuple(state.constraints),
                    declared_type=state.declared_type,
                    meta=dict(state.meta),
                    line=state.line if state.path == relation.path else None,
                )
                for index, state in enumerate(relation.columns.values(), start=1)
            )
            snapshot.assets[fqn] = Asset(
                fqn=fqn,
                kind="view" if relation.kind == "view" else "table",
                path=relation.path,
                line=relation.line,
                columns=columns,
                columns_known=relation.columns_known,
                dialect=self.dialect,
                sql=relation.sql,
                materialized=relation.materialized,
                name=relation.name,
                description=relation.description,
                meta=dict(relation.meta),
                constraints=tuple(sorted(set(relation.constraints.values()))),
                depends_on=relation.depends_on,
                checksum=_checksum(relation.definition),
            )
            snapshot.edges.extend(relation.edges)
        return snapshot


class _LazySchema(Mapping[str, Mapping[str, str]]):
    """fqn -> {column: type} over the builder's relations, without copying them all per view."""

    def __init__(self, relations: Mapping[str, _RelationState]) -> None:
        self._relations = relations

    def __getitem__(self, fqn: str) -> Mapping[str, str]:
        relation = self._relations[fqn]
        if not (relation.columns_known and relation.columns):
            raise KeyError(fqn)
        return {col.name: col.type for col in relation.columns.values()}

    def __iter__(self) -> Iterator[str]:
        return (fqn for fqn, rel in self._relations.items() if rel.columns_known and rel.columns)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _discard(items: list[str], value: str) -> None:
    while value in items:
        items.remove(value)


def _strip_quotes(name: str) -> str:
    if name[:1] in ('"', "`") and name[-1:] == name[:1]:
        return name[1:-1]
    return name.lower()


def _comment_property(create: exp.Create) -> str | None:
    props = create.args.get("properties")
    if not props:
        return None
    for prop in props.expressions:
        if isinstance(prop, exp.SchemaCommentProperty) and isinstance(prop.this, exp.Literal):
            return prop.this.name
        if isinstance(prop, exp.Property) and prop.name.lower() == "description":
            value = prop.args.get("value")
            if isinstance(value, exp.Literal):
                return value.name
    return None


def _projection_lines(query: exp.Query, line: int) -> dict[str, int]:
    """Output column key -> the file line of its projection (the statement starts at ``line``)."""
    lines: dict[str, int] = {}
    selects = query.selects if isinstance(query, exp.Query) else []
    for projection in selects:
        ident = projection.args.get("alias") if isinstance(projection, exp.Alias) else projection
        if isinstance(ident, exp.Column):
            ident = ident.this
        meta_line = ident.meta.get("line") if isinstance(ident, exp.Identifier) else None
        if isinstance(meta_line, int):
            lines.setdefault(column_key(_ident(ident)), line + meta_line - 1)
    return lines


def _is_temporary(create: exp.Create) -> bool:
    props = create.args.get("properties")
    return bool(props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions))


def _like_source(create: exp.Create) -> exp.Table | None:
    props = create.args.get("properties")
    for prop in props.expressions if props else ():
        if isinstance(prop, exp.LikeProperty) and isinstance(prop.this, exp.Table):
            return prop.this
    return None


def build_sql_snapshot(files: Sequence[tuple[str, str]], *, dialect: str) -> Snapshot:
    """The schema state after applying ``files`` ((path, text), in path order) one by one."""
    builder = _Builder(dialect)
    for path, text in files:
        for statement in split_statements(text, dialect):
            try:
                parsed = sqlglot.parse(statement.text, dialect=dialect)
            except Exception as error:
                builder.problem(path, f"cannot parse SQL: {_short(error)}", statement.line)
                continue
            for node in parsed:
                if node is None:
                    continue
                try:
                    builder.apply(node, path, statement.line, statement.text)
                except Exception as error:  # a statement we misread must not lose the file
                    builder.problem(path, f"cannot apply statement: {_short(error)}", statement.line)
    return builder.snapshot()
