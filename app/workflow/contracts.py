"""What a merged pull request publishes: new contract versions for the assets it changed.

Not built yet: merging only closes the proposal (recorded in the audit log by ``pulls``).
"""

from __future__ import annotations

from typing import Any


async def publish_merged(ctx: Any, proposal: Any) -> None:
    """Publish contract versions for a merged proposal (a later step; nothing yet)."""
    return None
