"""What several registry modules share."""

from __future__ import annotations

import datetime as dt


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as the API's UTC timestamps (``2026-01-02T03:04:05Z``)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
