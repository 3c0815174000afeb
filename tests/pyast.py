"""``ast.parse`` for the tests that read the project's own source.

CPython 3.11 checks, after building a tree's Python objects, that its recursion counter came back
to where it started; the counter is the interpreter's, not the call's. A garbage collection during
the build can run a finalizer whose failure is formatted as a traceback, and 3.11's traceback
formatting calls ``ast.parse`` itself: the nested parse moves the counter and the outer one raises
``SystemError: AST constructor recursion depth mismatch``. (Seen in full runs, where an earlier
test's asyncio transport was collected mid-parse.) With the collector paused, no finalizer can run
inside the parse.
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
