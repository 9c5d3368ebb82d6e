"""The shared Informer (rayside.runtime) against localkube over HTTP: paged lists, selectors, indexes,
bookmarks, a relist after 410 Gone, growing backoff under injected list faults (reset after a success), and
halt()."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from localkube.cluster import LocalKube
from localkube.testing import running
from rayside.objects import CONFIGMAPS, JSON, labels_of, name_of, resource_version_of
from rayside.runtime.informer import Informer
from tests.support.kube import wait_for

pytestmark = pytest.mark.api
NS = "default"


def cm(name: str, **labels: str) -> JSON:
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "data": {"k": name}}


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_paged_list_selectors_indexes_and_changes(lk: LocalKube, stop: threading.Event) -> None:
    admin = lk.kube_client()
    for i in range(7):
        admin.create(CONFIGMAPS.path(NS), cm(f"c{i}", app="x", shard=str(i % 2)))
    admin.create(CONFIGMAPS.path(NS), cm("other", app="y"))
    changes: list[tuple[str | None, str | None]] = []
    client = lk.kube_client()
    informer = Informer(
        client,
        CONFIGMAPS.path(NS),
        label_selector="app=x",
        on_change=lambda old, new: changes.append((old and name_of(old), new and name_of(new))),
        indexers={"shard": lambda o: (labels_of(o).get("shard", ""),)},
        page_size=2,
    )
    informer.start(stop)
    assert informer.synced.wait(30)
    assert client.stats.get("GET", 0) >= 4  # 7 objects in pages of 2
    assert sorted(name_of(o) for o in informer.list(NS)) == [f"c{i}" for i in range(7)]
    assert sorted(name_of(o) for o in informer.by_index("shard", "1")) == ["c1", "c3", "c5"]
    assert informer.get(NS, "other") is None and informer.get_by_key(f"{NS}/c0") is not None
    assert all("managedFields" not in o["metadata"] for o in informer.list())
    assert sorted(changes) == [(None, f"c{i}") for i in range(7)]

    admin.patch(CONFIGMAPS.path(NS, "c1"), {"metadata": {"labels": {"shard": "0"}}})
    admin.delete(CONFIGMAPS.path(NS, "c2"))
    wait_for(lambda: ("c2", None) in changes, 10, "the delete delivered")
    assert ("c1", "c1") in changes
    assert sorted(name_of(o) for o in informer.by_index("shard", "1")) == ["c3", "c5"]
    assert len(informer) == 6

    by_field = Informer(lk.kube_client(), CONFIGMAPS.path(NS), field_selector="metadata.name=c4")
    by_field.start(stop)
    assert by_field.synced.wait(30)
    assert [name_of(o) for o in by_field.list()] == ["c4"]


def test_bookmarks_advance_the_resource_version_without_matching_changes(
    lk: LocalKube, stop: threading.Event
) -> None:
    admin = lk.kube_client()
    informer = Informer(lk.kube_client(), CONFIGMAPS.path(NS), label_selector="app=watched")
    informer.start(stop)
    assert informer.synced.wait(30)
    listed = int(informer.resource_version)
    last = int(resource_version_of(admin.create(CONFIGMAPS.path(NS), cm("unrelated"))))
    assert last > listed
    # only a BOOKMARK (every 1 s on this server) can move the informer past the unrelated write
    wait_for(lambda: int(informer.resource_version) >= last, 15, "a bookmark")
    assert len(informer) == 0 and informer.relists == 1


def test_relist_after_410_gone_reports_what_changed_meanwhile(stop: threading.Event) -> None:
    with running(bookmark_interval=600.0) as lk:
        admin = lk.kube_client()
        admin.create(CONFIGMAPS.path(NS), cm("keep", app="x"))
        deleted: list[str] = []
        informer = Informer(
            lk.kube_client(),
            CONFIGMAPS.path(NS),
            label_selector="app=x",
            on_change=lambda old, new: deleted.append(name_of(old)) if old and new is None else None,
            watch_timeout=1,  # the watch is re-opened from the informer's resourceVersion every second
        )
        informer.start(stop)
        assert informer.synced.wait(30)
        admin.create(CONFIGMAPS.path(NS), cm("unrelated"))  # moves the server past the informer
        lk.compact()  # the informer's resourceVersion is now too old: its next watch gets 410 Gone
        wait_for(lambda: informer.relists >= 2, 15, "a relist after 410")
        assert [name_of(o) for o in informer.list()] == ["keep"]
        admin.create(CONFIGMAPS.path(NS), cm("new", app="x"))
        wait_for(lambda: informer.get(NS, "new"), 10, "the watch resumed after the relist")
        assert deleted == [] and informer.failures == 0


def test_failed_lists_back_off_growing_and_a_success_resets_it(stop: threading.Event) -> None:
    delays: list[float] = []

    def sleep(seconds: float) -> None:  # records the backoff; pauses only briefly to keep the test short
        delays.append(seconds)
        time.sleep(0.01)

    with running(bookmark_interval=600.0) as lk:
        lk.faults.set(error_rates={"list": {500: 1.0}})
        informer = Informer(
            lk.kube_client(retries=1),
            CONFIGMAPS.path(NS),
            label_selector="app=x",
            sleep=sleep,
            watch_timeout=1,
        )
        informer.start(stop)
        wait_for(lambda: len(delays) >= 6, 30, "six failed lists")
        assert delays[:6] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0] and not informer.synced.is_set()
        lk.faults.clear()
        assert informer.synced.wait(30)
        wait_for(lambda: informer.failures == 0, 10, "a watch that ended normally")
        delays.clear()
        lk.faults.set(error_rates={"list": {500: 1.0}})
        lk.kube_client().create(CONFIGMAPS.path(NS), cm("unrelated"))
        lk.compact()  # forces a relist, which fails again
        wait_for(lambda: delays, 15, "a failed relist")
        assert delays[0] == 0.2  # the backoff starts over
        lk.faults.clear()


def test_halt_ends_one_informer(lk: LocalKube, stop: threading.Event) -> None:
    informer = Informer(lk.kube_client(), CONFIGMAPS.path(NS), watch_timeout=1)
    thread = informer.start(stop)
    assert informer.synced.wait(30)
    informer.halt()
    thread.join(10)
    assert not thread.is_alive() and not stop.is_set()


def test_observe_stores_only_newer_copies_of_cached_objects(lk: LocalKube, stop: threading.Event) -> None:
    admin = lk.kube_client()
    created = admin.create(CONFIGMAPS.path(NS), cm("w"))
    informer = Informer(lk.kube_client(), CONFIGMAPS.path(NS), watch_timeout=1)
    informer.start(stop)
    assert informer.synced.wait(30)
    updated: Any = admin.patch(CONFIGMAPS.path(NS, "w"), {"data": {"k": "v2"}})
    informer.observe(updated)
    cached = informer.get(NS, "w")
    assert cached is not None and cached["data"] == {"k": "v2"}
    informer.observe(created)  # older: ignored
    assert informer.get(NS, "w") == cached
    informer.observe(cm("never-listed"))  # not cached: ignored (the watch delivers new objects)
    assert informer.get(NS, "never-listed") is None
