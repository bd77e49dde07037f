"""SQLite storage: see core.py for how its two connections share the work and how the table families make up the
Store. Import from here."""

from bot.store.alerts import AlertSync, OutboxItem
from bot.store.core import Store
from bot.store.inbox import Delivery, DeliveryOutcome, StoredDelivery
from bot.store.orders import SaveResult
from bot.store.schema import MIGRATIONS
from bot.store.sql import WRITE_CHUNK, connect
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
