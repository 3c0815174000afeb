"""An :class:`rules.model.Analysis` to JSON and back, losslessly.

``Analysis.to_dict`` is the public ``tessera check`` shape and leaves out what the workflow needs
later (ack fingerprints, impact paths), so the store keeps every field instead: a command handled
an hour after the push must see exactly the required acks the check was computed from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from rules.model import (
    Analysis,
    AnalysisError,
    Change,
    Detected,
    Dialect,
    Impact,
    Migration,
    Project,
    RequiredAck,
    Unread,
)

_PARTS: dict[str, type] = {
    "changes": Change,
    "impacts": Impact,
    "required_acks": RequiredAck,
    "migrations": Migration,
    "errors": AnalysisError,
    "unread": Unread,
}


def analysis_to_json(analysis: Analysis) -> str:
    return json.dumps(asdict(analysis), separators=(",", ":"), default=str)


def analysis_from_json(text: str) -> Analysis:
    data = json.loads(text)
    kwargs: dict[str, Any] = {}
    for field in fields(Analysis):
        if field.name not in data:
            continue
        value = data[field.name]
        part = _PARTS.get(field.name)
        if part is not None:
            kwargs[field.name] = tuple(_build(part, item) for item in value)
        elif field.name == "projects":
            kwargs[field.name] = tuple(_project(item) for item in value)
        elif field.name == "notes":
            kwargs[field.name] = tuple(str(n) for n in value)
        elif field.name == "detected":
            kwargs[field.name] = None if value is None else _build(Detected, value)
        else:
            kwargs[field.name] = value
    return Analysis(**kwargs)


def _build(cls: type, item: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in item.items() if k in names}
    return cls(**values)


def _project(item: dict[str, Any]) -> Project:
    dialect = item.get("dialect") or {}
    return Project(path=item["path"], dialect=_build(Dialect, dialect))
