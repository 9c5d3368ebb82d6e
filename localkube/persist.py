"""SQLite persistence for the store: write-behind from a background thread, loaded once at start."""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Row = tuple[str, str, str, dict[str, Any]]


class SqlitePersister:
    """Batches object writes into one transaction every few milliseconds; `close()` flushes everything."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "localkube.db"
        self._queue: queue.Queue[tuple[str, str, str, str | None, int] | None] = queue.Queue()
        db = sqlite3.connect(self.path)
        db.execute(
            "CREATE TABLE IF NOT EXISTS objects (skey TEXT, ns TEXT, name TEXT, body TEXT, "
            "PRIMARY KEY (skey, ns, name))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        db.commit()
        db.close()
        self._thread = threading.Thread(target=self._run, name="localkube-sqlite", daemon=True)
        self._thread.start()

    def load(self) -> tuple[list[Row], int]:
        db = sqlite3.connect(self.path)
        try:
            rows = [
                (s, n, m, json.loads(b))
                for s, n, m, b in db.execute("SELECT skey, ns, name, body FROM objects")
            ]
            got = db.execute("SELECT v FROM meta WHERE k = 'rv'").fetchone()
            return rows, int(got[0]) if got else 0
        finally:
            db.close()

    def put(self, skey: str, ns: str, name: str, obj: dict[str, Any], rv: int) -> None:
        self._queue.put((skey, ns, name, json.dumps(obj), rv))

    def delete(self, skey: str, ns: str, name: str, rv: int) -> None:
        self._queue.put((skey, ns, name, None, rv))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        done = False
        while not done:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get(timeout=0.02))
                except queue.Empty:
                    break
                if len(batch) >= 5000:
                    break
            done = self._write(db, batch)
        db.close()

    def _write(
        self, db: sqlite3.Connection, batch: list[tuple[str, str, str, str | None, int] | None]
    ) -> bool:
        done = False
        max_rv = 0
        with db:
            for item in batch:
                if item is None:
                    done = True
                    continue
                skey, ns, name, body, rv = item
                max_rv = max(max_rv, rv)
                if body is None:
                    db.execute("DELETE FROM objects WHERE skey=? AND ns=? AND name=?", (skey, ns, name))
                else:
                    db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", (skey, ns, name, body))
            if max_rv:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(max_rv),))
        log.debug("persisted %d writes", len(batch))
        return done
