"""Render the common subset of Jinja templates by walking their parsed tree, without compiling them.

dbt models wrap their SQL in a few statements (``{% set x = ... %}``, ``{% set x %}...{% endset %}``,
``{% if target.type == ... %}``, ``{% for c in [...] %}``, ``{% do ... %}``): compiling such a
template (Jinja's code generator, then Python's ``compile``) costs more than rendering it, and
each distinct model text is rendered only once or twice. :func:`prepare` parses a template and
accepts it only when every node is one this module evaluates exactly as the compiled code does:

- an expression is evaluated as Jinja's generated code evaluates it: names through the context
  (``undefined(name=...)`` when missing), attributes and items through the sandbox's ``getattr``
  and ``getitem``, calls through its ``call``, filters as the compiled code calls them (with the
  context, evaluation context or environment first when the filter asks for it), Python's own
  operators, comparisons and short-circuits; an expression Jinja folds to a constant when it
  compiles is folded here with the same environment;
- a ``{% set %}`` at the top level stores a local and the context's variable as the compiled code
  does; a name the template sets later but reads first inside a loop or a set block is
  undefined there, as in Jinja's scoping (its symbol tracking says which names those are);
- loops without ``loop``, ``else``, a filter or recursion, whose bodies set nothing; set blocks
  without a filter, whose bodies set nothing.

Anything else (macros, calls with ``caller``, ``{% with %}``, tests, slices, ...) is left to the
compiled template, and so is any template whose rendering here raises: the caller renders it
again with Jinja, so errors and their lines are always Jinja's own.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.idtracking
import jinja2.nodes as nodes
import jinja2.runtime
from jinja2.utils import _PassArg

_SPECIAL_NAMES = frozenset({"self", "super", "loop", "caller", "varargs", "kwargs"})
"""Names the compiled code may bind itself rather than look up."""

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}
_BINARY: dict[type[nodes.Node], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: operator.mul,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
    nodes.Mod: operator.mod,
    nodes.Pow: operator.pow,
}
_UNARY: dict[type[nodes.Node], Callable[[Any], Any]] = {
    nodes.Not: operator.not_,
    nodes.Neg: operator.neg,
    nodes.Pos: operator.pos,
}


@dataclass(frozen=True)
class Program:
    """A parsed template that :func:`render` can render; shared by every project (it holds no
    project's state)."""

    tree: nodes.Template
    constant: frozenset[int]
    """Ids of the expressions Jinja folds to a constant when it compiles (see :func:`prepare`)."""
    unset_first: tuple[str, ...]
    """Top-level names that are undefined until the template sets them (not looked up)."""
    eval_context: nodes.EvalContext
    """The compiling environment's evaluation context, which folded constants are computed in."""


def prepare(compiler: jinja2.Environment, source: str) -> Program | None:
    """The template as a :class:`Program`, or None when it does not parse or holds anything
    outside the subset. ``compiler`` is the environment that would compile it: its filters decide
    how a filter is called and what Jinja folds to a constant."""
    try:
        tree = compiler.parse(source)
    except jinja2.TemplateSyntaxError:
        return None
    eval_context = nodes.EvalContext(compiler)
    if eval_context.volatile or eval_context.autoescape:
        return None
    scan = _Scan()
    try:
        scan.statement(tree, assigning=True)
    except _Outside:
        return None
    constant: set[int] = set()
    for node in scan.foldable:
        try:
            nodes.Const.from_untrusted(node.as_const(eval_context), environment=compiler)
        except nodes.Impossible:
            continue
        constant.add(id(node))
    unset_first: tuple[str, ...] = ()
    if scan.assigns:  # only a name the template sets can be undefined until it is set
        symbols = jinja2.idtracking.symbols_for_node(tree)
        unset_first = tuple(
            sorted(
                name
                for name, ref in symbols.refs.items()
                if symbols.loads.get(ref, (None,))[0] == jinja2.idtracking.VAR_LOAD_UNDEFINED
            )
        )
    return Program(tree, frozenset(constant), unset_first, eval_context)


class _Outside(Exception):
    """A node :func:`render` does not evaluate as the compiled code does."""


class _Scan:
    """One walk over a parsed template: refuses what is outside the subset, and collects the
    expressions made only of constants (the ones Jinja may fold when it compiles)."""

    def __init__(self) -> None:
        self.foldable: list[nodes.Expr] = []
        self.assigns = False

    def statement(self, node: nodes.Node, *, assigning: bool) -> None:
        """``assigning``: a ``{% set %}`` is allowed here (not in a loop or a set block's body)."""
        kind = type(node)
        if kind is nodes.Output:
            for child in node.nodes:
                self.expression(child)
        elif kind is nodes.Template:
            self.statements(node.body, assigning)
        elif kind is nodes.If:
            self.expression(node.test)
            self.statements(node.body, assigning)
            for elif_ in node.elif_:
                self.statement(elif_, assigning=assigning)
            self.statements(node.else_, assigning)
        elif kind is nodes.Assign:
            self.target(node.target, assigning)
            self.expression(node.node)
        elif kind is nodes.AssignBlock:
            self.target(node.target, assigning)
            if node.filter is not None:
                raise _Outside
            self.statements(node.body, False)
        elif kind is nodes.For:
            if node.else_ or node.test is not None or node.recursive:
                raise _Outside
            for target in node.target.items if isinstance(node.target, nodes.Tuple) else [node.target]:
                if not _name_target(target):
                    raise _Outside
            self.expression(node.iter)
            self.statements(node.body, False)
        elif kind is nodes.ExprStmt:
            self.expression(node.node)
        else:
            raise _Outside

    def statements(self, body: Iterable[nodes.Node], assigning: bool) -> None:
        for node in body:
            self.statement(node, assigning=assigning)

    def target(self, node: nodes.Node, assigning: bool) -> None:
        if not assigning or not _name_target(node):
            raise _Outside
        self.assigns = True

    def expression(self, node: nodes.Node) -> bool:
        """Whether ``node`` reads only constants; raises :class:`_Outside` for what is not in the
        subset."""
        kind = type(node)
        if kind is nodes.Const or kind is nodes.TemplateData:
            return True
        if kind is nodes.Name:
            if node.ctx != "load" or node.name in _SPECIAL_NAMES:
                raise _Outside
            return False
        if kind is nodes.Call:
            keys = [k.key for k in node.kwargs]
            if node.dyn_args is not None or node.dyn_kwargs is not None or len(set(keys)) != len(keys):
                raise _Outside
            self.expression(node.node)
            self.all([*node.args, *(k.value for k in node.kwargs)])
            return False
        if kind is nodes.Filter:
            if node.node is None or node.dyn_args is not None or node.dyn_kwargs is not None:
                raise _Outside
            pure = self.all([node.node, *node.args, *(k.value for k in node.kwargs)])
        elif kind is nodes.Getattr:
            pure = self.expression(node.node)
        elif kind is nodes.Getitem:
            if isinstance(node.arg, nodes.Slice):
                raise _Outside
            pure = self.all([node.node, node.arg])
        elif kind is nodes.Compare:
            if any(op.op not in _COMPARISONS for op in node.ops):
                raise _Outside
            pure = self.all([node.expr, *(op.expr for op in node.ops)])
        elif kind is nodes.And or kind is nodes.Or or kind in _BINARY:
            pure = self.all([node.left, node.right])
        elif kind in _UNARY:
            pure = self.expression(node.node)
        elif kind is nodes.Concat:
            pure = self.all(node.nodes)
        elif kind is nodes.List or (kind is nodes.Tuple and node.ctx == "load"):
            pure = self.all(node.items)
        elif kind is nodes.Dict:
            pure = self.all([part for pair in node.items for part in (pair.key, pair.value)])
        elif kind is nodes.CondExpr:
            if node.expr2 is None:
                raise _Outside
            pure = self.all([node.test, node.expr1, node.expr2])
        else:
            raise _Outside
        if pure:
            self.foldable.append(node)
        return pure

    def all(self, expressions: Iterable[nodes.Node]) -> bool:
        pure = True
        for expression in expressions:
            pure = self.expression(expression) and pure  # every one is checked
        return pure


def _name_target(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.ctx == "store" and node.name not in _SPECIAL_NAMES


def call(compiler: jinja2.Environment, name: str, args: tuple[str, ...]) -> Program:
    """``{{ name('a', 'b') }}`` as :func:`prepare` gives it, without parsing: the tree Jinja's
    parser makes of a call with plain string arguments (``ref``, ``source``: most of a dbt
    model's expressions)."""
    node = nodes.Call(nodes.Name(name, "load"), [nodes.Const(a) for a in args], [], None, None)
    tree = nodes.Template([nodes.Output([node])])
    return Program(tree, frozenset(), (), nodes.EvalContext(compiler))


def expression(program: Program) -> bool:
    """Whether the program is one ``{{ ... }}`` expression (what :func:`render_in` renders)."""
    body = program.tree.body
    return len(body) == 1 and isinstance(body[0], nodes.Output) and not program.unset_first


def render(program: Program, env: jinja2.Environment) -> str:
    """The template's output, as ``env.from_string(source).render()`` gives it. Raises whatever
    the rendering raises (the caller then renders the template with Jinja for its error)."""
    return render_in(program, env, jinja2.runtime.new_context(env, None, {}, globals=env.make_globals(None)))


def render_in(program: Program, env: jinja2.Environment, context: jinja2.runtime.Context) -> str:
    """:func:`render` in a context made already: the expressions of one template share its
    context (making one copies every global, each macro of the project), and an expression
    changes nothing in it (only ``{% set %}`` does)."""
    walk = _Walk(program, env, context)
    out: list[str] = []
    walk.statements(program.tree.body, out)
    return "".join(out)


class _Walk:
    """One rendering: the scopes of names set so far (the top level's, then any loop's)."""

    def __init__(self, program: Program, env: jinja2.Environment, context: jinja2.runtime.Context) -> None:
        self.program, self.env, self.context = program, env, context
        self.top: dict[str, Any] = dict.fromkeys(program.unset_first, jinja2.runtime.missing)
        self.scopes: list[dict[str, Any]] = [self.top]

    # -- statements ---------------------------------------------------------------------------

    def statements(self, body: Iterable[nodes.Node], out: list[str]) -> None:
        for node in body:
            if isinstance(node, nodes.Output):
                for child in node.nodes:
                    if isinstance(child, nodes.TemplateData):
                        out.append(child.data)
                    else:
                        out.append(str(self.value(child)))
            elif isinstance(node, nodes.If):
                self.branch(node, out)
            elif isinstance(node, nodes.Assign):
                self.assign(node.target.name, self.value(node.node))
            elif isinstance(node, nodes.AssignBlock):
                captured: list[str] = []
                self.statements(node.body, captured)
                self.assign(node.target.name, "".join(captured))
            elif isinstance(node, nodes.For):
                self.loop(node, out)
            else:
                assert isinstance(node, nodes.ExprStmt)
                self.value(node.node)

    def branch(self, node: nodes.If, out: list[str]) -> None:
        if self.value(node.test):
            self.statements(node.body, out)
            return
        for elif_ in node.elif_:
            if self.value(elif_.test):
                self.statements(elif_.body, out)
                return
        self.statements(node.else_, out)

    def assign(self, name: str, value: Any) -> None:
        """A top-level ``{% set %}``: the local, and the context's variable the compiled code
        keeps beside it (exported unless private)."""
        self.top[name] = value
        self.context.vars[name] = value
        if not name.startswith("_"):
            self.context.exported_vars.add(name)

    def loop(self, node: nodes.For, out: list[str]) -> None:
        iterable = self.value(node.iter)
        scope: dict[str, Any] = {}
        self.scopes.append(scope)
        try:
            for item in iterable:
                scope.clear()
                if isinstance(node.target, nodes.Tuple):
                    names = [t.name for t in node.target.items]
                    values = list(item)
                    if len(values) != len(names):  # Python's unpacking raises; so does Jinja's code
                        raise ValueError(f"expected {len(names)} values to unpack, got {len(values)}")
                    scope.update(zip(names, values, strict=True))
                else:
                    scope[node.target.name] = item
                self.statements(node.body, out)
        finally:
            self.scopes.pop()

    # -- expressions --------------------------------------------------------------------------

    def value(self, node: nodes.Node) -> Any:
        if id(node) in self.program.constant:
            return node.as_const(self.program.eval_context)  # a new list or dict each time, as Jinja's
        kind = type(node)
        if kind is nodes.Const:
            return node.value
        if kind is nodes.Name:
            return self.name(node.name)
        if kind is nodes.Getattr:
            return self.env.getattr(self.value(node.node), node.attr)
        if kind is nodes.Call:
            function = self.value(node.node)
            args = [self.value(arg) for arg in node.args]
            kwargs = {keyword.key: self.value(keyword.value) for keyword in node.kwargs}
            return self.env.call(self.context, function, *args, **kwargs)  # type: ignore[attr-defined]
        if kind is nodes.Filter:
            return self.filter(node)
        if kind is nodes.Compare:
            return self.compare(node)
        if kind is nodes.And:
            return self.value(node.left) and self.value(node.right)
        if kind is nodes.Or:
            return self.value(node.left) or self.value(node.right)
        if kind in _UNARY:
            return _UNARY[kind](self.value(node.node))
        if kind in _BINARY:
            left = self.value(node.left)
            return _BINARY[kind](left, self.value(node.right))
        if kind is nodes.Concat:
            return "".join([str(item) for item in [self.value(n) for n in node.nodes]])
        if kind is nodes.List:
            return [self.value(item) for item in node.items]
        if kind is nodes.Tuple:
            return tuple([self.value(item) for item in node.items])
        if kind is nodes.Dict:
            result: dict[Any, Any] = {}
            for pair in node.items:
                key = self.value(pair.key)
                result[key] = self.value(pair.value)
            return result
        if kind is nodes.Getitem:
            target = self.value(node.node)
            return self.env.getitem(target, self.value(node.arg))
        if kind is nodes.CondExpr:
            return self.value(node.expr1) if self.value(node.test) else self.value(node.expr2)
        if kind is nodes.TemplateData:
            return node.data
        raise TypeError(f"not in the subset: {kind.__name__}")  # prepare() accepted it: a bug

    def name(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                value = scope[name]
                return self.env.undefined(name=name) if value is jinja2.runtime.missing else value
        value = self.context.resolve_or_missing(name)
        return self.env.undefined(name=name) if value is jinja2.runtime.missing else value

    def filter(self, node: nodes.Filter) -> Any:
        """As the compiled code calls a filter: the environment's filter of that name, with what
        the compiling environment's filter of that name asks to be passed first."""
        function = self.env.filters[node.name]
        first: tuple[Any, ...] = ()
        asks = _PassArg.from_obj(self.program.eval_context.environment.filters.get(node.name))
        if asks is _PassArg.context:
            first = (self.context,)
        elif asks is _PassArg.eval_context:
            first = (self.context.eval_ctx,)
        elif asks is _PassArg.environment:
            first = (self.env,)
        value = self.value(node.node)
        args = [self.value(arg) for arg in node.args]
        kwargs = {keyword.key: self.value(keyword.value) for keyword in node.kwargs}
        return function(*first, value, *args, **kwargs)

    def compare(self, node: nodes.Compare) -> Any:
        """Python's chained comparison: ``a < b < c`` is ``a < b and b < c``, ``b`` evaluated once."""
        left = self.value(node.expr)
        result: Any = True
        for operand in node.ops:
            right = self.value(operand.expr)
            result = _COMPARISONS[operand.op](left, right)
            if not result:
                return result
            left = right
        return result
