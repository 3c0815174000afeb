"""Every ``/api/v1`` answer the test suite receives is checked against the published OpenAPI
document: the operation (method and path template) must list the status, and the body must
validate against that status's schema. Every time in a body must be ISO 8601 text.

The check wraps aiohttp's ``TestClient`` (see the autouse fixture in ``tests/conftest.py``), so a
test that calls the API checks the document as a side effect and fails on any drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from app.api.openapi import document

PREFIX = "/api/v1"


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Path templates as patterns, the most literal first (``/assets/{fqn}/impact`` before ``/assets/{fqn}``)."""
    found = []
    for template in document()["paths"]:
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        found.append((pattern, template))
    return sorted(found, key=lambda item: -len(re.sub(r"\{[^}]+\}", "", item[1])))


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The template and operation object answering ``method path`` (``path`` without the prefix)."""
    for pattern, template in _templates():
        if pattern.match(path):
            operation = document()["paths"][template].get(method.lower())
            return (template, operation) if operation else None
    return None


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref and ref.startswith("#/components/responses/"):
        return document()["components"]["responses"][ref.rsplit("/", 1)[1]]
    return node


def _time_fields(value: Any, where: str = "body") -> Iterator[str]:
    """Places where a time is given as a number (every time is ISO 8601 text)."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            if (key == "at" or key.endswith("_at")) and isinstance(item, int | float) and not isinstance(item, bool):
                yield here
            yield from _time_fields(item, here)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _time_fields(item, f"{where}[{n}]")


def problems(method: str, path: str, status: int, content_type: str, text: str) -> list[str]:
    """What is wrong with one answer, against the document (empty: it matches)."""
    if not path.startswith(PREFIX + "/"):
        return []
    found = operation_for(method, path[len(PREFIX):])
    if found is None:
        return [] if status in (404, 405) else [f"{method} {path}: no operation in the document answered {status}"]
    template, operation = found
    responses = operation["responses"]
    if str(status) not in responses:
        return [f"{method} {template}: status {status} is not documented (documented: {', '.join(responses)})"]
    if status == 204:
        return [] if text == "" else [f"{method} {template}: 204 with a body"]
    media = _resolve(responses[str(status)]).get("content", {})
    schema = media.get("application/json", {}).get("schema")
    if schema is None:
        return []
    if not content_type.startswith("application/json"):
        return [f"{method} {template} {status}: {content_type} instead of application/json"]
    body = json.loads(text)
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = [
        f"{method} {template} {status}: body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message[:200]}"
        for e in validator.iter_errors(body)
    ]
    errors += [f"{method} {template} {status}: {where} is a number, not an ISO 8601 time" for where in _time_fields(body)]
    return errors


@cache
def _validator(schema_text: str) -> Draft202012Validator:
    schema = {**json.loads(schema_text), "components": document()["components"]}
    return Draft202012Validator(schema)
