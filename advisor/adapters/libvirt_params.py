"""What a live migration asks of libvirt: the flags and the typed parameters of virDomainMigrateToURI3, from the
advisor's MigrationParameters."""

from __future__ import annotations

from typing import Any

import libvirt

from advisor.domain.model import MigrationParameters, Technique
from advisor.execution.hypervisor import MigrationTarget


def migration_flags(parameters: MigrationParameters, persistent: bool) -> int:
    flags: int = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
    if persistent:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if parameters.technique is Technique.PRECOPY_AUTOCONVERGE:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if parameters.technique in (Technique.PRECOPY_XBZRLE, Technique.PRECOPY_COMPRESS):
        flags |= libvirt.VIR_MIGRATE_COMPRESSED
    if parameters.postcopy_after_ms is not None:
        # libvirt starts every post-copy as a pre-copy that is allowed to switch.
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if parameters.migrate_disks:
        # The local disks are mirrored to the target's volumes over NBD before and while memory moves (a full
        # copy: VIR_MIGRATE_NON_SHARED_INC would need the target to hold their backing images already).
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    if parameters.tls:
        # QEMU encrypts the stream with the hosts' migration certificates (qemu.conf migrate_tls_x509_cert_dir);
        # libvirt fails the migration rather than send it in clear when they are missing.
        flags |= libvirt.VIR_MIGRATE_TLS
    return flags


def migration_params(parameters: MigrationParameters, target: MigrationTarget) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if target.migration_address:
        address = target.migration_address
        # an IPv6 address goes in brackets in a URI (validation lets in only an IP address or a host name)
        params[libvirt.VIR_MIGRATE_PARAM_URI] = f"tcp://[{address}]" if ":" in address else f"tcp://{address}"
        params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = target.migration_address
    if parameters.bandwidth_mib_s > 0:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = max(1, round(parameters.bandwidth_mib_s))
    if parameters.postcopy_after_ms is not None and parameters.postcopy_bandwidth_mib_s > 0:
        # QEMU would lift the cap once in post-copy; the cost was predicted at this bandwidth, so it holds.
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = max(1, round(parameters.postcopy_bandwidth_mib_s))
    if parameters.migrate_disks:
        # Only these: libvirt would otherwise copy every disk it takes as not shared, by its own rule.
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(parameters.migrate_disks)
    if parameters.technique is Technique.PRECOPY_AUTOCONVERGE:
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = parameters.autoconverge_initial_pct
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = parameters.autoconverge_increment_pct
    if parameters.technique is Technique.PRECOPY_XBZRLE:
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = "xbzrle"
    if parameters.technique is Technique.PRECOPY_COMPRESS:
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = "mt"
        if parameters.compression_threads:
            params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION_MT_THREADS] = parameters.compression_threads
    return params
