"""Small private settings (API token, active adapter, …) as JSON values inside the encrypted database.

Non-secret machine settings (model paths, thread count) belong in `paths.settings()` instead, readable
before the store is unlocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from storage.timeutil import now


class Settings:
    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db().execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        """Any JSON-serialisable value; replaces the old one."""
        encoded = json.dumps(value, ensure_ascii=False)
        with self._db().atomic() as db:
            db.execute(
                """INSERT INTO settings (key, value, updated) VALUES (?, ?, ?)
                   ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated""",
                [key, encoded, now()],
            )

    def update(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Read, change and write one value in one transaction, so two processes never lose each other's edits."""
        with self._db().atomic():
            value = change(self.get(key, default))
            self.set(key, value)
        return value

    def delete(self, key: str) -> None:
        with self._db().atomic() as db:
            db.execute("DELETE FROM settings WHERE key = ?", [key])

    def keys(self) -> list[str]:
        return [row[0] for row in self._db().execute("SELECT key FROM settings ORDER BY key").fetchall()]
