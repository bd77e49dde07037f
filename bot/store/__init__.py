"""SQLite storage: see core.py for how its two connections share the work. Import from here."""

from bot.store.alerts import AlertSync, OutboxItem
from bot.store.core import WRITE_CHUNK, Delivery, DeliveryOutcome, SaveResult, Store, StoredDelivery
from bot.store.schema import MIGRATIONS
from bot.store.sql import connect
from bot.store.verdicts import Classified

__all__ = [
    "MIGRATIONS",
    "WRITE_CHUNK",
    "AlertSync",
    "Classified",
    "Delivery",
    "DeliveryOutcome",
    "OutboxItem",
    "SaveResult",
    "Store",
    "StoredDelivery",
    "connect",
]
