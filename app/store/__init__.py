"""All SQL lives in this package. See :mod:`app.store.core` for the threading model,
:mod:`app.store.db` for the SQL both engines (SQLite, PostgreSQL) accept, and
:mod:`app.store.migrations` for how to add a table."""

from app.store.core import Store, StoreFull, connect
from app.store.deliveries import STATUSES, Delivery, JobOutcome, NewDelivery
from app.store.migrations import MIGRATIONS, apply_migrations

__all__ = ["MIGRATIONS", "STATUSES", "Delivery", "JobOutcome", "NewDelivery", "Store", "StoreFull", "apply_migrations", "connect"]
