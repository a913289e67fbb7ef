"""The sandbox's pure parts: names and addresses, the NAT ruleset, capabilities, log rotation, `apps list`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from rsp.commands.apps import format_list
from rsp.config.model import Forward
from rsp.errors import SandboxError
from rsp.sandbox import capabilities, naming, nat
from rsp.sandbox.logfiles import RotatingLog, read_log


def test_the_derived_tag_is_stable_per_config_path_and_an_explicit_one_wins(tmp_path: Path) -> None:
    a = naming.instance_tag(str(tmp_path / "a.lua"))
    assert a == naming.instance_tag(str(tmp_path / "a.lua")) and len(a) == naming.DERIVED_TAG_LEN
    assert a != naming.instance_tag(str(tmp_path / "b.lua"))
    assert naming.instance_tag("x.lua", "abc") == "abc"


def test_app_networks_are_consecutive_slash_30s_with_host_end_1_and_app_end_2() -> None:
    nets = [naming.app_net("abcdef", "10.213.0.0/16", i, f"app{i}") for i in (0, 1, 16383)]
    assert [(n.host_ip, n.app_ip) for n in nets] == [
        ("10.213.0.1", "10.213.0.2"), ("10.213.0.5", "10.213.0.6"), ("10.213.255.253", "10.213.255.254")]
    for n in nets:
        assert len(n.host_if) <= 15 and len(n.app_if) <= 15  # IFNAMSIZ - 1
        assert ipaddress.ip_address(n.app_ip) in ipaddress.ip_network(f"{n.host_ip}/30", strict=False)
    with pytest.raises(ValueError):
        naming.app_net("abcdef", "10.213.0.0/16", 16384, "x")


def test_one_instance_prefix_never_matches_another_instance_names() -> None:
    mine = naming.app_net("ab", "10.0.0.0/24", 0, "one")
    other = naming.app_net("abh", "10.0.0.0/24", 0, "one")
    assert not other.host_if.startswith(naming.link_prefix("ab"))
    assert not other.netns.startswith(naming.netns_prefix("ab"))
    assert mine.host_if.startswith(naming.link_prefix("ab")) and mine.netns.startswith(naming.netns_prefix("ab"))


def test_nat_ruleset_dnats_each_forward_in_prerouting_and_output_and_isolates_apps() -> None:
    nets = {name: naming.app_net("t1", "10.213.0.0/16", i, name) for i, name in enumerate(("one", "two"))}
    text = nat.ruleset("t1", [Forward(6000, "one", 8080), Forward(6001, "two", 8081)], nets)
    assert text.startswith("table ip rsp_t1 {")
    assert text.count("tcp dport 6000 dnat to 10.213.0.2:8080") == 2  # prerouting and output
    assert text.count("tcp dport 6001 dnat to 10.213.0.6:8081") == 2
    assert 'oifname "rst1-h*" ip saddr 127.0.0.0/8 masquerade' in text
    assert 'iifname "rst1-h*" oifname "rst1-h*" drop' in text
    with pytest.raises(SandboxError):
        nat.ruleset("t1", [Forward(6000, "three", 8080)], {"three": None})


def test_missing_capabilities_are_named() -> None:
    both = (1 << capabilities.CAP_SYS_ADMIN) | (1 << capabilities.CAP_NET_ADMIN)
    assert capabilities.missing_capabilities(both) == []
    missing = capabilities.missing_capabilities(1 << capabilities.CAP_NET_ADMIN)
    assert len(missing) == 1 and missing[0].startswith("CAP_SYS_ADMIN")
    assert capabilities.effective_capabilities("Name:\tx\nCapEff:\t0000000000201000\n") == both


def test_the_log_rotates_at_its_size_and_keeps_one_previous_file(tmp_path: Path) -> None:
    path = str(tmp_path / "one.log")
    log = RotatingLog(path, 10)
    log.write(b"0123456789abc")  # fills one file, rotates, starts the next
    log.write(b"defghijklmnopq")
    log.close()
    assert Path(path + ".1").read_bytes() == b"abcdefghij"
    assert Path(path).read_bytes() == b"klmnopq"
    assert read_log(path) == b"abcdefghijklmnopq"  # the first 10 bytes are gone: bounded at twice the size


def test_apps_list_shows_uptime_only_for_live_apps() -> None:
    apps = [
        {"name": "one", "netns": "rsp-t-one", "address": "10.213.0.2:8080", "pid": 42, "state": "ready",
         "restarts": 1, "started_at": 100.0},
        {"name": "web2", "netns": "", "address": "127.0.0.1:9000", "pid": None, "state": "restarting",
         "restarts": 3, "started_at": 90.0},
    ]
    lines = format_list(apps, 160.0).splitlines()
    assert lines[0].split() == ["NAME", "NAMESPACE", "ADDRESS", "PID", "STATE", "RESTARTS", "UPTIME"]
    assert lines[1].split() == ["one", "rsp-t-one", "10.213.0.2:8080", "42", "ready", "1", "60s"]
    assert lines[2].split() == ["web2", "(host)", "127.0.0.1:9000", "-", "restarting", "3", "-"]
