"""Shaped links (advisor/lab/shaping.py): the tc commands, the parsing of what `lo` holds, and the install and
removal sequence against a stand-in for tc that keeps the state a kernel would."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.lab import shaping
from advisor.lab.daemon import HostSpec, host_uuid
from advisor.lab.shaping import Link, ShapingError


def spec(root: str, name: str) -> HostSpec:
    return HostSpec(name, Path(root) / name, Path(root) / "cache", host_uuid(Path(root), name))


def test_a_link_is_numbered_by_its_port_block_and_shaped_in_bits() -> None:
    link = Link(49152 + 16 * 15, 16)
    assert link.number == 0x10F and link.classid == "1:10f"
    assert link.bits_per_s == 16 * 1024 * 1024 * 8
    host = spec("/tmp/lab-a", "hv1")
    assert Link.into(host, 8).low_port == host.migration_ports[0]
    for bad_port in (49151, 49153, 65536 + 16):
        with pytest.raises(ValueError, match="port block"):
            Link(bad_port, 8)
    for bad_rate in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="MiB/s"):
            Link(49152, bad_rate)
    with pytest.raises(ValueError, match="above 0"):
        shaping.add_link(Link(49152, 0))


def test_the_commands_shape_only_tcp_to_the_port_block() -> None:
    root, default = shaping.add_root()
    assert root == ["qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1"]
    assert default[:7] == ["class", "add", "dev", "lo", "parent", "1:", "classid"] and default[7] == "1:1"
    assert default[default.index("rate") + 1] == "100gbit"
    klass, queue, flt = shaping.add_link(Link(49392, 16))
    assert klass[klass.index("classid") + 1] == "1:10f"
    assert klass[klass.index("rate") + 1] == klass[klass.index("ceil") + 1] == "134217728bit"
    assert queue == ["qdisc", "add", "dev", "lo", "parent", "1:10f", "bfifo", "limit", str(round(16 * 2**20 * 0.05))]
    assert shaping.add_link(Link(49392, 1))[1][-1] == str(shaping.BURST_BYTES)  # never below one burst
    text = " ".join(flt)
    assert "prio 271 u32" in text and text.endswith("flowid 1:10f")
    assert "match ip dst 127.0.0.1/32" in text and "match ip protocol 6 0xff" in text
    assert "match ip dport 49392 0xfff0" in text
    assert shaping.remove_filter(Link(49392)) == ["filter", "del", "dev", "lo", "parent", "1:", "protocol", "ip",
                                                  "prio", "271", "u32"]
    assert shaping.remove_class(Link(49392)) == ["class", "del", "dev", "lo", "classid", "1:10f"]


def test_what_lo_holds_is_read_from_tc() -> None:
    assert shaping.root_kind('[{"kind":"noqueue","handle":"0:","root":true}]') == "none"
    assert shaping.root_kind("") == "none"
    ours = '[{"kind":"htb","handle":"1:","root":true,"options":{"r2q":10,"default":"0x1"}}]'
    assert shaping.root_kind(ours) == "lab"
    assert shaping.root_kind('[{"kind":"htb","handle":"1:","root":true,"options":{"default":"0x10"}}]') == "htb 1:"
    assert shaping.root_kind('[{"kind":"fq_codel","handle":"8001:","root":true}]') == "fq_codel 8001:"
    classes = ("class htb 1:1 root prio 0 rate 100Gbit ceil 100Gbit burst 16762500b cburst 0b \n"
               "class htb 1:10f root prio 0 rate 134217Kbit ceil 134217Kbit burst 262127b cburst 262127b \n")
    assert shaping.link_classes(classes) == {"1:10f"}
    filters = ('[{"protocol":"ip","pref":271,"kind":"u32","chain":0},'
               '{"protocol":"ip","pref":300,"kind":"u32","chain":0,"options":{"fh":"800::800"}}]')
    assert shaping.filter_numbers(filters) == {271, 300}


class FakeTc:
    """Answers tc's show commands from a state it updates on add and del, as the kernel would; `fail` names a
    command word sequence to refuse once."""

    def __init__(self) -> None:
        self.root: str | None = None  # "lab" or a foreign kind
        self.classes: set[str] = set()
        self.filters: set[int] = set()
        self.fail: str | None = None
        self.log: list[str] = []

    def __call__(self, args: list[str], json_output: bool = False) -> str:
        line = " ".join(args)
        self.log.append(line)
        if self.fail and line.startswith(self.fail):
            self.fail = None
            raise ShapingError(f"tc {line}: RTNETLINK answers: No such file or directory")
        if line == "qdisc show dev lo":
            if self.root is None:
                return '[{"kind":"noqueue","handle":"0:","root":true}]'
            if self.root == "lab":
                return '[{"kind":"htb","handle":"1:","root":true,"options":{"default":"0x1"}}]'
            return json.dumps([{"kind": self.root, "handle": "8001:", "root": True}])
        if line == "class show dev lo":
            return "".join(f"class htb {c} root prio 0 rate 1bit \n" for c in sorted(self.classes))
        if line.startswith("filter show"):
            return json.dumps([{"protocol": "ip", "pref": p, "kind": "u32"} for p in sorted(self.filters)])
        if line.startswith("qdisc add") and "parent" in args:
            assert args[args.index("parent") + 1] in self.classes  # a class's queue
        elif line.startswith("qdisc add"):
            assert self.root is None
            self.root = "lab"
        elif line.startswith("qdisc del"):
            assert self.root == "lab" and not self.filters
            self.root, self.classes = None, set()
        elif line.startswith("class add"):
            classid = args[args.index("classid") + 1]
            assert self.root == "lab" and classid not in self.classes
            self.classes.add(classid)
        elif line.startswith("class del"):
            classid = args[args.index("classid") + 1]
            assert classid in self.classes and int(classid[2:], 16) not in self.filters  # "HTB class in use"
            self.classes.remove(classid)
        elif line.startswith("filter add"):
            prio = int(args[args.index("prio") + 1])
            assert re.search(r"flowid 1:[0-9a-f]+$", line) and prio not in self.filters
            self.filters.add(prio)
        elif line.startswith("filter del"):
            prio = int(args[args.index("prio") + 1])
            assert prio in self.filters
            self.filters.remove(prio)
        return ""


@pytest.fixture
def fake_tc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeTc]:
    fake = FakeTc()
    monkeypatch.setattr(shaping, "tc", fake)
    monkeypatch.setattr(shaping, "LOCK", tmp_path / "shaping.lock")
    monkeypatch.setattr(shaping.shutil, "which", lambda name: f"/usr/sbin/{name}")
    yield fake


def test_a_link_is_installed_for_the_block_and_the_root_goes_with_the_last_link(fake_tc: FakeTc) -> None:
    hv1, hv2 = spec("/tmp/lab-a", "hv1"), spec("/tmp/lab-b", "hv2")
    with shaping.shaped_link(hv1, 16) as one:
        assert fake_tc.root == "lab" and fake_tc.classes == {"1:1", one.classid}
        with shaping.shaped_link(hv2, 8) as two:  # another lab's link shares the root
            assert fake_tc.filters == {one.number, two.number}
        assert fake_tc.root == "lab" and fake_tc.classes == {"1:1", one.classid}
    assert fake_tc.root is None and not fake_tc.filters


def test_a_link_left_by_a_killed_run_is_replaced_and_removed_at_lab_down(fake_tc: FakeTc) -> None:
    hv1, hv2 = spec("/tmp/lab-a", "hv1"), spec("/tmp/lab-a", "hv2")
    for command in [*shaping.add_root(), *shaping.add_link(Link.into(hv1, 24))]:
        fake_tc(command)
    with shaping.shaped_link(hv1, 12):
        assert fake_tc.filters == {Link.into(hv1).number}
        rate = [line for line in fake_tc.log if line.startswith("class add") and "1:1 " not in line][-1]
        assert f"rate {12 * 8 * 1024 * 1024}bit" in rate
        fake_tc.log.clear()
    assert fake_tc.root is None
    for command in [*shaping.add_root(), *shaping.add_link(Link.into(hv2, 24))]:
        fake_tc(command)
    assert shaping.remove_links([hv1, hv2]) == ["hv2"]
    assert fake_tc.root is None
    assert shaping.remove_links([hv1, hv2]) == []  # nothing left: only reads


def test_a_failed_install_or_run_leaves_lo_as_it_was(fake_tc: FakeTc) -> None:
    hv1 = spec("/tmp/lab-a", "hv1")
    fake_tc.fail = "filter add"
    with pytest.raises(ShapingError, match=r"filter add .* No such file"), shaping.shaped_link(hv1, 16):
        pass
    assert fake_tc.root is None and not fake_tc.classes
    with pytest.raises(RuntimeError, match="migration failed"), shaping.shaped_link(hv1, 16):
        raise RuntimeError("migration failed")
    assert fake_tc.root is None and not fake_tc.classes
    fake_tc.log.clear()
    with pytest.raises(ValueError, match="above 0"), shaping.shaped_link(hv1, 0):
        pass
    assert fake_tc.log == []  # refused before tc runs


def test_a_root_qdisc_that_is_not_the_labs_is_left_alone(fake_tc: FakeTc) -> None:
    fake_tc.root = "fq_codel"
    with pytest.raises(ShapingError, match="root qdisc of its own"), shaping.shaped_link(spec("/tmp/a", "hv1"), 16):
        pass
    assert fake_tc.root == "fq_codel" and not any(line.startswith(("qdisc del", "qdisc add"))
                                                  for line in fake_tc.log)
    assert shaping.remove_links([spec("/tmp/a", "hv1")]) == []


def test_tc_errors_name_the_command_and_tcs_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "tc"
    fake.write_text("#!/bin/sh\necho 'Error: HTB class in use.' >&2\nexit 2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(shaping.shutil, "which", lambda _name: str(fake))
    with pytest.raises(ShapingError, match=r"^tc class del dev lo classid 1:100: Error: HTB class in use\.$"):
        shaping.tc(shaping.remove_class(Link(49152)))
    monkeypatch.setattr(shaping.shutil, "which", lambda _name: None)
    with pytest.raises(ShapingError, match="not installed"):
        shaping.tc(["qdisc", "show", "dev", "lo"])
    assert shaping.remove_links([spec("/tmp/a", "hv1")]) == []  # no tc: nothing can be left
