"""Reading webhook payloads defensively: a malformed delivery fails at once, saying which field.

A delivery is signed by GitHub, but its shape is still input: a proxy, a replayed or hand-edited
delivery, or a GitHub change can leave out ``pull_request``, send ``repository: null`` or a number
as a string. A bare ``data["pull_request"]`` would raise ``KeyError``, which the queue treats as a
bug (retried, then reported with a traceback). Retrying cannot fix a payload, so these readers
raise :class:`~app.errors.PermanentError` naming the field and what was wrong, and the operator
sees ``malformed pull_request delivery: pull_request.head.sha is missing`` in
``tessera deliveries --failed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import PermanentError

_MISSING = object()


class PayloadReader:
    """Typed access to one delivery's JSON by dotted path (``"pull_request.head.sha"``)."""

    def __init__(self, data: Any, event: str) -> None:
        self._data = data
        self.event = event

    def fail(self, path: str, problem: str) -> PermanentError:
        """The error for a field that is missing or of the wrong kind (raise it)."""
        return PermanentError(f"malformed {self.event} delivery: {path} {problem}")

    def _get(self, path: str) -> Any:
        node: Any = self._data
        walked: list[str] = []
        for part in path.split("."):
            if not isinstance(node, Mapping):
                where = ".".join(walked) or "the payload"
                raise self.fail(where, f"is {_kind(node)}, not an object")
            walked.append(part)
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
        return node

    def has(self, path: str) -> bool:
        """True when the field is present and not null."""
        try:
            value = self._get(path)
        except PermanentError:
            return False
        return value is not _MISSING and value is not None

    def mapping(self, path: str) -> Mapping[str, Any]:
        value = self._get(path)
        if value is _MISSING or value is None:
            raise self.fail(path, "is missing")
        if not isinstance(value, Mapping):
            raise self.fail(path, f"is {_kind(value)}, not an object")
        return value

    def items(self, path: str) -> list[Any]:
        """A list field; absent or null reads as empty (GitHub leaves empty lists out at times)."""
        value = self._get(path)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"is {_kind(value)}, not a list")
        return value

    def text(self, path: str, *, default: str | None = None) -> str:
        value = self._get(path)
        if value is _MISSING or value is None:
            if default is not None:
                return default
            raise self.fail(path, "is missing")
        if not isinstance(value, str):
            raise self.fail(path, f"is {_kind(value)}, not text")
        return value

    def integer(self, path: str) -> int:
        """A number; a string of digits is accepted (some proxies and tools stringify ids)."""
        value = self._get(path)
        if value is _MISSING or value is None:
            raise self.fail(path, "is missing")
        if isinstance(value, bool):
            raise self.fail(path, f"is {_kind(value)}, not a number")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        raise self.fail(path, f"is {_kind(value)}, not a number")

    def installation_id(self) -> int:
        """The installation the App acts as: without it nothing can be done on GitHub."""
        return self.integer("installation.id")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"the text {shown!r}"
    if isinstance(value, list):
        return "a list"
    return "an object"


class _Prefixed(PayloadReader):
    """A reader of a nested object whose messages still name the full path."""

    def __init__(self, data: Any, event: str, prefix: str) -> None:
        super().__init__(data, event)
        self._prefix = prefix

    def fail(self, path: str, problem: str) -> PermanentError:
        full = self._prefix if path == "the payload" else f"{self._prefix}.{path}"
        return super().fail(full, problem)


def listed_numbers(reader: PayloadReader, path: str) -> list[int]:
    """The ``number`` of every pull request listed at ``path`` (check runs and suites list them)."""
    numbers: list[int] = []
    for index, listed in enumerate(reader.items(path)):
        where = f"{path}[{index}]"
        if not isinstance(listed, Mapping):
            raise reader.fail(where, f"is {_kind(listed)}, not a pull request")
        numbers.append(_Prefixed(listed, reader.event, where).integer("number"))
    return numbers
