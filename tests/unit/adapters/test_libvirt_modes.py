"""What the libvirt adapter reads from a domain's definition and asks of libvirt (pure, no daemon): how to ask QEMU
to measure a dirty rate, the networks its interfaces use, whether it has a guest agent channel, when to encrypt a
migration."""

from __future__ import annotations

import libvirt
import pytest

from advisor.adapters.libvirt import dirty_rate_mode, has_agent_channel, interface_networks, migration_flags
from advisor.domain.model import MigrationParameters, Technique

SAMPLING = libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING
BITMAP = libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP
RING = libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING


@pytest.mark.parametrize(("xml", "mode"), [
    # TCG (the lab): QEMU crashes in the dirty-log modes, page sampling only
    ("<domain type='qemu'><name>g</name></domain>", SAMPLING),
    ("<domain type='qemu'><features><kvm><dirty-ring state='on' size='4096'/></kvm></features></domain>", SAMPLING),
    # KVM: the dirty log sees writes that leave a page's content unchanged, which page sampling cannot
    ("<domain type='kvm'><name>g</name></domain>", BITMAP),
    ("<domain type='kvm'><features><acpi/></features></domain>", BITMAP),
    ("<domain type='kvm'><features><kvm><dirty-ring state='off'/></kvm></features></domain>", BITMAP),
    ("<domain type='kvm'><features><kvm><dirty-ring state='on' size='4096'/></kvm></features></domain>", RING),
])
def test_dirty_rate_mode_follows_the_accelerator(xml: str, mode: int) -> None:
    assert dirty_rate_mode(xml) == mode


@pytest.mark.parametrize("tls", [False, True])
def test_tls_is_asked_of_libvirt_exactly_when_the_move_is_encrypted(tls: bool) -> None:
    flags = migration_flags(MigrationParameters(Technique.PRECOPY, 32.0, 300.0, tls=tls), persistent=True)
    assert bool(flags & libvirt.VIR_MIGRATE_TLS) == tls
    assert flags & libvirt.VIR_MIGRATE_LIVE and flags & libvirt.VIR_MIGRATE_PEER2PEER


DEVICES = """<domain type='kvm'><name>g</name><devices>
  <interface type='network'><source network='default'/><mac address='52:54:00:00:00:01'/></interface>
  <interface type='bridge'><source bridge='br-prod'/><vlan><tag id='42'/></vlan></interface>
  <interface type='direct'><source dev='eth1' mode='bridge'/></interface>
  <interface type='network'><source network='sriov-pool'/></interface>
  <interface type='hostdev' managed='yes'><source><address type='pci' bus='0x03' slot='0x10'/></source></interface>
  <interface type='user'/>
  <interface type='network'><source network='default'/></interface>
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='connected'/></channel>
</devices></domain>"""


def test_the_networks_of_a_guest_are_those_its_interfaces_name_once_each() -> None:
    assert interface_networks(DEVICES) == ("default", "br-prod", "eth1", "sriov-pool")
    assert interface_networks("<domain type='qemu'><devices><serial type='pty'/></devices></domain>") == ()


def test_a_guest_agent_channel_is_found_by_its_name() -> None:
    assert has_agent_channel(DEVICES)
    assert not has_agent_channel("<domain><devices><channel type='unix'><target type='virtio' "
                                 "name='org.libguestfs.channel.0'/></channel></devices></domain>")
