"""Pure parts of kubelet recovery: child restart back-off, leftover network detection, log authorization."""

from __future__ import annotations

from localkube.kubelet.child import exit_text, restart_delay
from localkube.kubelet.logs import authorized
from localkube.kubelet.network import NETNS_NAME, VETH_NAME, orphans, owner_alias, parse_links, stale_bridges


def test_restart_delay_is_the_backoff_until_the_minute_budget_is_spent() -> None:
    assert restart_delay(2.0, [], 100.0, 3) == 2.0
    assert restart_delay(2.0, [90.0, 95.0], 100.0, 3) == 2.0
    assert restart_delay(2.0, [70.0, 90.0, 95.0], 100.0, 3) == 30.0  # the oldest of the 3 leaves at 130


def test_exit_text() -> None:
    assert exit_text(-9) == "killed by signal 9"
    assert exit_text(1) == "exit code 1"


def test_only_bridges_of_dead_localkube_owners_are_stale() -> None:
    bridges = {
        "lkb0": owner_alias(111, 5),  # dead owner
        "lkb1": owner_alias(222, 6),  # alive
        "lkb2": "",  # no owner recorded: not ours to judge
        "docker0": owner_alias(111, 5),  # not a localkube name
    }
    assert stale_bridges(bridges, lambda pid, start: pid == 222) == ["lkb0"]


def test_orphans_are_namespaces_and_veths_whose_bridge_is_gone() -> None:
    names = ["lk0-1", "lk0-2", "lk1-1", "lkx-1", "other"]
    assert orphans(names, NETNS_NAME, {"lkb1"}) == ["lk0-1", "lk0-2"]
    assert orphans(["lk0v1", "lk1v3", "eth0"], VETH_NAME, {"lkb1"}) == ["lk0v1"]


def test_parse_links_reads_aliases_of_ip_o_link() -> None:
    out = (
        "5: lkb0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN\\    link/ether ce:db brd ff:ff"
        "\\    alias localkube pid=1 start=2\n"
        "6: lk0v3@if2: <BROADCAST> mtu 1500\\    link/ether aa:bb brd ff:ff\n"
    )
    assert parse_links(out) == {"lkb0": "localkube pid=1 start=2", "lk0v3": ""}


def test_log_endpoint_authorization() -> None:
    assert authorized("Bearer s3cret", "s3cret") == 200
    assert authorized("", "s3cret") == 401
    assert authorized("Basic abc", "s3cret") == 401
    assert authorized("Bearer other", "s3cret") == 403
