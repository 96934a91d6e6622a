"""Which processes a lab may claim as its own from their mount tables (advisor.lab.procs)."""

from __future__ import annotations

from pathlib import Path

from advisor.lab.procs import mounts_lab_run_dir

ROOT = Path("/tmp/advisor-lab-test")


def line(source: str, target: str = "/run/libvirt") -> str:
    return f"812 790 0:45 {source} {target} rw,relatime shared:1 - tmpfs tmpfs rw"


def test_a_host_directory_mounted_at_run_libvirt_is_the_labs() -> None:
    # /tmp a tmpfs of its own: the directory is relative to it
    assert mounts_lab_run_dir(line("/advisor-lab-test/hosts/hv1/run"), ROOT)
    # /tmp on the root filesystem: the whole path
    assert mounts_lab_run_dir(line("/tmp/advisor-lab-test/hosts/hv2/run"), ROOT)


def test_a_directory_removed_since_still_counts() -> None:
    assert mounts_lab_run_dir(line("/advisor-lab-test/hosts/hv1/run//deleted"), ROOT)


def test_another_labs_hosts_or_other_mounts_do_not() -> None:
    assert not mounts_lab_run_dir(line("/other-lab/hosts/hv1/run"), ROOT)
    assert not mounts_lab_run_dir(line("/advisor-lab-test/hosts/hv1/run", "/var/lib/libvirt"), ROOT)
    assert not mounts_lab_run_dir(line("/"), ROOT)
    assert not mounts_lab_run_dir("", ROOT)
    # a lab whose directory has the same name under another parent is not this one
    assert not mounts_lab_run_dir(line("/tmp/x/hosts/hv1/run"), Path("/srv/x"))
