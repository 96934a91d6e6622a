"""The setting migration_tls against hosts with and without TLS: the transport decided for a move, the placement
filter, the setting's parsing, and TLS's overhead in a move's inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from advisor.config import load_settings, policies
from advisor.domain.errors import ConfigError
from advisor.domain.model import Host, Vm
from advisor.domain.transport import TlsMode, transport
from advisor.features.inputs import VmObservations, migration_inputs
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR
from advisor.planning.engine import FilterKind, FilterPolicy
from advisor.planning.engine.filters import assess, judge, rejections
from tests.unit.planning_engine.helpers import cluster, host, vm

OFF, PREFERRED, REQUIRED = TlsMode.OFF, TlsMode.PREFERRED, TlsMode.REQUIRED

TABLE = [
    # (mode, source offers TLS, target offers TLS, encrypted, refused, words of the reason)
    (OFF, True, True, False, False, "plain TCP (setting migration_tls = off)"),
    (OFF, False, False, False, False, "plain TCP (setting migration_tls = off)"),
    (PREFERRED, True, True, True, False, "TLS, both hosts offer it"),
    (PREFERRED, True, False, False, False, "plain TCP, unencrypted: t offers no TLS for migration"),
    (PREFERRED, False, True, False, False, "plain TCP, unencrypted: s offers no TLS"),
    (PREFERRED, False, False, False, False, "s and t offer no TLS for migration (setting migration_tls = preferred "
                                            "falls back)"),
    (REQUIRED, True, True, True, False, "TLS, both hosts offer it (setting migration_tls = required)"),
    (REQUIRED, True, False, False, True, "refused: t offers no TLS for migration"),
    (REQUIRED, False, True, False, True, "refused: s offers no TLS for migration"),
    (REQUIRED, False, False, False, True, "refused: s and t offer no TLS"),
]


@pytest.mark.parametrize(("mode", "source_tls", "target_tls", "tls", "refused", "words"), TABLE)
def test_each_setting_against_hosts_with_and_without_tls(mode: TlsMode, source_tls: bool, target_tls: bool,
                                                         tls: bool, refused: bool, words: str) -> None:
    carried = transport(mode, Host("s", 8, 8192, migration_tls=source_tls), Host("t", 8, 8192,
                                                                                  migration_tls=target_tls))
    assert (carried.tls, bool(carried.refusal)) == (tls, refused)
    assert words in carried.reason


@pytest.mark.parametrize(("mode", "source_tls", "target_tls", "tls", "refused", "words"), TABLE)
def test_the_placement_filter_rules_out_what_required_refuses(mode: TlsMode, source_tls: bool, target_tls: bool,
                                                              tls: bool, refused: bool, words: str) -> None:
    c = cluster([host("s", migration_tls=source_tls), host("t", migration_tls=target_tls)], [vm("m", "s")])
    why = judge(c, 0, 1, FilterPolicy(migration_tls=mode))
    assert (FilterKind.TLS in why) == refused
    if refused:
        assert "no TLS for migration (setting migration_tls = required)" in why[FilterKind.TLS]
        assert ("m's host s" in why[FilterKind.TLS]) == (not source_tls)
        assert ("this host" in why[FilterKind.TLS]) == (not target_tls)


def test_required_keeps_the_hosts_with_tls_and_counts_the_others() -> None:
    hosts = [host("s", migration_tls=True), host("a", migration_tls=False), host("b", migration_tls=True),
             host("c")]
    c = cluster(hosts, [vm("m", "s")])
    policy = FilterPolicy(migration_tls=REQUIRED)
    a = assess(c, c.loads, 0, policy)
    assert [c.host_ids[h] for h in a.eligible_hosts()] == ["b"]
    refused = {r.kind: r for r in rejections(c, c.loads, a, policy)}
    assert refused[FilterKind.TLS].hosts == 2 and refused[FilterKind.TLS].example_host == "a"
    assert (assess(c, c.loads, 0, FilterPolicy(migration_tls=PREFERRED)).eligible_hosts() == np.array([1, 2, 3])).all()


def test_the_setting_from_file_environment_and_flag_and_its_default(tmp_path: Path) -> None:
    assert load_settings().migration_tls == "preferred"
    assert policies(load_settings()).filters.migration_tls is PREFERRED
    config = tmp_path / "advisor.toml"
    config.write_text('migration_tls = "required"\n')
    assert policies(load_settings(config)).filters.migration_tls is REQUIRED
    assert load_settings(config, {"ADVISOR_MIGRATION_TLS": "off"}).migration_tls == "off"
    assert load_settings(config, {}, {"migration_tls": "preferred"}).migration_tls == "preferred"
    with pytest.raises(ConfigError, match="migration_tls must be off, preferred or required, got 'yes'"):
        load_settings(None, {"ADVISOR_MIGRATION_TLS": "yes"})


def test_tls_costs_a_share_of_the_link_not_of_the_cap() -> None:
    source, target = Host("s", 8, 8192, network_bandwidth_mib_s=100.0), Host("t", 8, 8192,
                                                                              network_bandwidth_mib_s=100.0)
    plain = migration_inputs(Vm("v", "s", 1024, 1), source, target, VmObservations(), None)
    encrypted = migration_inputs(Vm("v", "s", 1024, 1), source, target, VmObservations(), None, tls=True)
    assert plain.usable_bandwidth_mib_s == 100.0 and plain.max_bandwidth_mib_s == encrypted.max_bandwidth_mib_s
    assert encrypted.usable_bandwidth_mib_s == pytest.approx(100.0 * TLS_THROUGHPUT_FACTOR)
    assert "for TLS's overhead" in encrypted.bandwidth_source
