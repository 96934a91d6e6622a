"""How the libvirt adapter asks QEMU to measure a dirty rate (from the domain's definition) and to encrypt a
migration: pure, no daemon."""

from __future__ import annotations

import libvirt
import pytest

from advisor.adapters.libvirt import dirty_rate_mode, migration_flags
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
