"""The SQLite persister with the store: a synced write is in the database, revisions continue above every
revision handed out before a restart, watches from before a restart get 410, and the files are private."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from localkube import fastjson
from localkube.persist import DB_NAME, LEASE_STEP, SqlitePersister, private_files, start_revision
from localkube.store import Store


def open_store(data: Path) -> Store:
    persister = SqlitePersister(data)
    store = Store(persister=persister)
    rows, rv = persister.load()
    store.load(rows, rv)
    return store


def configmap(name: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": {"k": name}}


def stored_rows(data: Path) -> dict[str, int]:
    """What another process would read from the database right now."""
    db = sqlite3.connect(data / DB_NAME)
    try:
        rows = db.execute("SELECT name, body FROM objects WHERE skey = 'core/configmaps'").fetchall()
    finally:
        db.close()
    return {name: int(fastjson.loads(body)["metadata"]["resourceVersion"]) for name, body in rows}


def test_start_revision_is_the_highest_known() -> None:
    assert start_revision({}, []) == 0
    assert start_revision({"rv": "7"}, [3, 9]) == 9
    assert start_revision({"rv": "7", "lease": "10007"}, [3]) == 10007


def test_a_synced_write_is_in_the_database(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        made = store.put("core/configmaps", configmap("a"), None)
        store.sync()
        assert stored_rows(tmp_path) == {"a": int(made["metadata"]["resourceVersion"])}
        store.remove("core/configmaps", "default", "a")
        store.sync()
        assert stored_rows(tmp_path) == {}
    finally:
        store.close()


def test_sync_waits_for_writes_of_this_thread_from_several_threads(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    acked: dict[str, int] = {}
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(50):
            name = f"t{t}-{i}"
            with store.lock:
                rv = int(store.put("core/configmaps", configmap(name), None)["metadata"]["resourceVersion"])
            store.sync()
            with lock:
                acked[name] = rv
            assert stored_rows(tmp_path).get(name) == rv

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert stored_rows(tmp_path) == acked
        assert len(store.events_after(0) or []) == 200  # all committed, so all visible to watches
    finally:
        store.close()


def test_revisions_never_go_back_across_restarts(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put("core/configmaps", configmap("a"), None)
    store.put("core/configmaps", configmap("b"), None)
    gone = store.remove("core/configmaps", "default", "b")  # a delete takes a revision too
    assert gone is not None
    handed_out = int(gone["metadata"]["resourceVersion"])
    store.sync()
    store.close()
    again = open_store(tmp_path)
    try:
        assert again.rv >= handed_out
        assert again.rv <= handed_out + LEASE_STEP
        assert again.events_after(handed_out - 1) is None  # a watch from before the restart: 410
        assert again.events_after(again.rv) == []
        made = again.put("core/configmaps", configmap("c"), None)
        assert int(made["metadata"]["resourceVersion"]) > handed_out
        assert again.get("core/configmaps", "default", "a") is not None
        assert again.get("core/configmaps", "default", "b") is None
    finally:
        again.close()


def test_existing_database_files_are_made_private(tmp_path: Path) -> None:
    for name in (DB_NAME, DB_NAME + "-wal"):
        (tmp_path / name).touch(mode=0o644)
        (tmp_path / name).chmod(0o644)
    private_files(tmp_path)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {
        DB_NAME: 0o600,
        DB_NAME + "-wal": 0o600,
    }


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    SqlitePersister(data).close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / DB_NAME).stat().st_mode) == 0o600


def test_full_sync_is_selectable_and_other_values_are_refused(tmp_path: Path) -> None:
    persister = SqlitePersister(tmp_path, synchronous="FULL")
    try:
        store = Store(persister=persister)
        store.load(*persister.load())
        store.put("core/configmaps", configmap("a"), None)
        store.sync()
        assert set(stored_rows(tmp_path)) == {"a"}
    finally:
        persister.close()
    with pytest.raises(ValueError, match="synchronous: 'OFF' is not NORMAL or FULL"):
        SqlitePersister(tmp_path, synchronous="OFF")
