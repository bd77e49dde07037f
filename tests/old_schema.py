"""A database as an older orderbot left it: every migration before a given one applied, and counted."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from bot.store.schema import MIGRATIONS
from bot.store.sql import set_version


def migrate_to_before(db: sqlite_utils.Database, migration: Callable[[sqlite_utils.Database], None]) -> int:
    """Apply the migrations before `migration`; returns how many (the file's user_version)."""
    before = MIGRATIONS.index(migration)
    for migrate in MIGRATIONS[:before]:
        migrate(db)
    set_version(db, before)
    return before
