"""SQLite persistence for the store (`--data-dir`): writes are queued in revision order and group-committed.

Guarantees (see docs/localkube.md, "Persistence"):
- a write is durable before it is acknowledged: `Store.sync()` waits (outside the store lock) until the
  batch holding the caller's writes is committed. The first waiting request commits everything queued (its
  own write and the others'), the rest wait for it; a batch takes what is queued, at most `MAX_BATCH`
  writes, and never waits for more (so it cannot grow under steady load). A background thread commits
  writes no request waits for within `BACKGROUND_DELAY`;
- resourceVersions never go back across restarts: before the store hands out a revision it must be covered
  by a *lease* committed to the database (`admit`), and a restart continues from the lease, which is at or
  above every revision ever handed out (acknowledged or not, seen by a watch or a list or not);
- the database and its WAL/shared-memory files are readable by the owner only (0600, the directory we
  create 0700), whatever the umask, and existing files are tightened at start.

With journal_mode=WAL and synchronous=NORMAL a commit is in the operating system's file cache when it
returns: it survives the process being killed (kill -9, OOM), not a power loss or kernel crash (the last
commits before one may be lost, the database stays consistent). `synchronous="FULL"` adds an fsync per batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localkube import fastjson
from rayside.objects import JSON, resource_version_of

log = logging.getLogger(__name__)

Row = tuple[str, str, str, JSON]
DB_NAME = "localkube.db"
DB_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal")
MAX_BATCH = 1000  # writes per transaction
BACKGROUND_DELAY = 0.005  # the writer thread commits unawaited writes this long after they are queued
LEASE_STEP = 10000  # revisions covered by one lease extension (a restart may skip up to this many)
FILE_MODE = 0o600
DIR_MODE = 0o700


class PersistError(RuntimeError):
    """The database could not commit (or the persister is closed): the write is not durable."""


@dataclass(frozen=True)
class Write:
    skey: str
    ns: str
    name: str
    body: bytes | None  # None: delete
    rv: int


@dataclass(frozen=True)
class Lease:
    rv: int


Item = Write | Lease


def private_dir(path: Path) -> None:
    """Create `path` (and parents) with mode 0700 when missing; an existing directory is left as it is."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(DIR_MODE)


def private_files(data_dir: Path) -> None:
    """Make sure the database exists as 0600 and tighten the mode of any existing database file."""
    db = data_dir / DB_NAME
    fd = os.open(db, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    for name in DB_FILES:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).chmod(FILE_MODE)


def start_revision(meta: dict[str, str], body_rvs: list[int]) -> int:
    """The first revision a restarted store may build on: no revision at or below it may be handed out
    again (the committed counter, the lease, and any stored object's revision)."""
    known = [int(meta.get("rv", "0")), int(meta.get("lease", "0")), *body_rvs]
    return max(known)


class SqlitePersister:
    """Queues writes in revision order and commits them in batches; `wait(rv)` blocks until durable."""

    def __init__(
        self,
        data_dir: Path,
        synchronous: str = "NORMAL",
        on_durable: Callable[[int], None] | None = None,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous: {synchronous!r} is not NORMAL or FULL")
        private_dir(data_dir)
        private_files(data_dir)
        self.path = data_dir / DB_NAME
        self.synchronous = synchronous
        self.on_durable = on_durable
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._cond = threading.Condition(threading.Lock())
        self._committed = 0  # every revision <= this is committed
        self._lease = 0  # committed lease: revisions <= this may be handed out
        self._lease_asked = 0
        self._error: str | None = None
        self._stopped = False
        self._closing = False
        self._work = threading.Event()  # something was queued
        self._commit_lock = threading.Lock()  # one batch at a time, in queue (= revision) order
        self._db = self._connect()  # used by whoever holds `_commit_lock`
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS objects (skey TEXT, ns TEXT, name TEXT, body TEXT, "
                "PRIMARY KEY (skey, ns, name))"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        self._thread = threading.Thread(target=self._run, name="localkube-sqlite", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        return db

    def load(self) -> tuple[list[Row], int]:
        """Every stored object and the revision to continue from (call before the first write)."""
        db = self._connect()
        try:
            rows = [
                (s, n, m, fastjson.loads(b))
                for s, n, m, b in db.execute("SELECT skey, ns, name, body FROM objects")
            ]
            meta = {str(k): str(v) for k, v in db.execute("SELECT k, v FROM meta")}
        finally:
            db.close()
        rvs = [int(resource_version_of(obj) or 0) for *_, obj in rows]
        rv = start_revision(meta, rvs)
        self._committed = self._lease = self._lease_asked = rv
        private_files(self.path.parent)  # the WAL files this start created
        return rows, rv

    # -- called by the store under its lock, in revision order -------------------------------------------
    def admit(self, rv: int) -> None:
        """Before revision `rv` is handed out: keep a committed lease ahead of it (extended half a step
        early, so writers only block on it when the database falls `LEASE_STEP / 2` writes behind)."""
        if rv + LEASE_STEP // 2 > self._lease_asked:
            self._lease_asked = rv + LEASE_STEP
            self._queue.put(Lease(self._lease_asked))
            self._work.set()
        if rv > self._lease:
            self._await(lambda: self._lease >= rv)

    def put(self, skey: str, ns: str, name: str, obj: JSON, rv: int) -> None:
        self._queue.put(Write(skey, ns, name, fastjson.dumps(obj), rv))
        self._work.set()

    def delete(self, skey: str, ns: str, name: str, rv: int) -> None:
        self._queue.put(Write(skey, ns, name, None, rv))
        self._work.set()

    # -- called by request threads outside the store lock ------------------------------------------------
    def wait(self, rv: int) -> None:
        """Block until every write up to revision `rv` is committed; PersistError when it never will be."""
        if self._committed < rv:
            self._await(lambda: self._committed >= rv)

    def _await(self, done: Callable[[], bool]) -> None:
        """Group commit: the first waiter commits everything queued (its own write and the others'), the
        rest wait for it; a waiter whose write came too late for that batch leads the next one."""
        while not done():
            if self._error is not None:
                raise PersistError(f"the write was not persisted: {self._error}")
            if self._stopped:
                raise PersistError("the write was not persisted: the store is closed")
            if self._commit_lock.acquire(blocking=False):
                try:
                    if not done():
                        self._commit_queued()
                finally:
                    self._commit_lock.release()
                continue
            with self._cond:
                if not done():
                    self._cond.wait(0.05)

    @property
    def committed(self) -> int:
        return self._committed

    def close(self) -> None:
        """Commit everything queued, then stop the writer."""
        self._closing = True
        self._work.set()
        self._thread.join(timeout=30)

    # -- committing ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        """Commits what no request waits for (e.g. internal writes) a few milliseconds after it is queued,
        leaving the writes requests wait for to the requests themselves (no thread hand-off)."""
        try:
            closing = False
            while not closing and self._healthy():
                self._work.wait()
                self._work.clear()
                closing = self._closing
                if not closing:
                    time.sleep(BACKGROUND_DELAY)
                with self._commit_lock:
                    self._commit_queued()
                    while closing and self._healthy() and not self._queue.empty():
                        self._commit_queued()
        finally:
            with self._commit_lock:
                self._db.close()
            with self._cond:
                self._stopped = True
                self._cond.notify_all()

    def _healthy(self) -> bool:
        return self._error is None

    def _commit_queued(self) -> None:
        """Commit what is queued, at most MAX_BATCH items (called with `_commit_lock` held). Batches are
        never grown by waiting: writes arriving during a commit form the next batch."""
        batch: list[Write | Lease] = []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        try:
            self._commit(self._db, batch)
        except sqlite3.Error as exc:
            log.exception("localkube: persisting %d writes failed", len(batch))
            with self._cond:
                self._error = f"{type(exc).__name__}: {exc}"
                self._cond.notify_all()
            self._work.set()

    def _commit(self, db: sqlite3.Connection, batch: list[Write | Lease]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        max_rv, lease = 0, 0
        with db:
            for item in batch:
                if isinstance(item, Lease):
                    lease = max(lease, item.rv)
                    continue
                max_rv = max(max_rv, item.rv)
                if item.body is None:
                    db.execute(
                        "DELETE FROM objects WHERE skey=? AND ns=? AND name=?",
                        (item.skey, item.ns, item.name),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                        (item.skey, item.ns, item.name, item.body),
                    )
            if max_rv:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(max_rv),))
            if lease:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('lease', ?)", (str(lease),))
        if max_rv and self.on_durable is not None:  # first: a watch started after the ack sees the write
            self.on_durable(max_rv)
        with self._cond:
            self._committed = max(self._committed, max_rv)
            self._lease = max(self._lease, lease)
            self._cond.notify_all()
        log.debug("persisted %d writes in %.1f ms", len(batch), (time.perf_counter() - start) * 1000)
