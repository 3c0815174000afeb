"""Measuring a YAML document before loading it.

A "billion laughs" document is a few hundred bytes whose aliases expand to billions of values:
loading it holds a worker until a time limit stops it. Counting the node graph (each shared node
once) tells its expanded size without expanding it, so every YAML file Tessera reads from a
repository (``.tessera.yml``, dbt property files, ``dbt_project.yml``) is measured first.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_YAML_VALUES = 1_000_000
"""Values a repository YAML file may expand to; far above any real dbt property file (the largest
fixture holds a few thousand) and far below a bomb (9**9 values)."""

_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s\[\]{},]")
_ComposeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def has_anchors(text: str) -> bool:
    """Whether a document defines an anchor: without one, nothing can expand beyond its text."""
    return "&" in text and "*" in text and _ANCHOR.search(text) is not None


class TooDeep(yaml.YAMLError):
    """A document nested deeper than the loader can follow (it recurses once per level)."""

    problem = "nested too deeply to read (hundreds of levels of lists or mappings)"

    def __str__(self) -> str:
        return self.problem


def load(text: str, loader: Any) -> Any:
    """``yaml.load`` whose failure on a document nested deeper than Python's recursion limit is a
    :class:`TooDeep` (a ``YAMLError``, so the caller's "invalid YAML" message names the file) and
    not a ``RecursionError`` that would fail everything the file is part of."""
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (callers pass SafeLoader subclasses)
    except RecursionError:
        raise TooDeep from None


def yaml_expanded_size(text: str, limit: int) -> int:
    """How many values a YAML document holds once its aliases are expanded (counted on the node
    graph, each shared node once, so a bomb is measured without being expanded); stops past
    ``limit``. A document that is not valid YAML counts 0: its parser says what is wrong."""
    try:
        root = yaml.compose(text, Loader=_ComposeLoader)
    except (yaml.YAMLError, RecursionError):
        return 0
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = limit + 1  # a node that contains itself expands without end
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        total = min(total, limit + 1)
        sizes[id(node)] = total
        return total

    try:
        return 0 if root is None else size(root)
    except RecursionError:
        return 0  # too deep to measure, and to load: the loader says so (TooDeep)


def expands_too_far(text: str, limit: int = MAX_YAML_VALUES) -> bool:
    """Whether loading ``text`` would build more than ``limit`` values through aliases (cheap for
    the usual document, which has no anchors at all)."""
    return has_anchors(text) and yaml_expanded_size(text, limit) > limit
