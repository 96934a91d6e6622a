"""How the libvirt adapter asks QEMU to measure a dirty rate: from the domain's definition (pure, no daemon)."""

from __future__ import annotations

import libvirt
import pytest

from advisor.adapters.libvirt import dirty_rate_mode

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
