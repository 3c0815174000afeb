"""``ast.parse`` for the tests that read the project's own source.

CPython 3.11 checks, after building a tree's Python objects, that its recursion counter came back
to where it started; the counter is the interpreter's, not the call's. A garbage collection during
the build can run finalizers, and any ``ast.parse`` reached from one (a nested parse) moves the
counter, so the outer parse raises ``SystemError: AST constructor recursion depth mismatch``. Seen
in full runs, where an earlier test's asyncio subprocess transport was collected mid-parse and its
failing finalizer was reported; a finalizer that parses reproduces it on most tries. With the
collector paused, no finalizer can run inside the parse.
"""

from __future__ import annotations

import ast
import gc


def parse_python(text: str) -> ast.Module:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text)
    finally:
        if enabled:
            gc.enable()
