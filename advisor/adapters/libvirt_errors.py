"""What a libvirt error means for the advisor: a small closed set of faults (failures.Fault), read from the
error's code, its domain (where in libvirt it arose) and, for the remote driver's connection errors, the system's
words it passes on (under one code, they are the only tell)."""

from __future__ import annotations

from typing import Any

import libvirt

from advisor.domain.failures import Fault

_AUTH = {libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_ERR_AUTH_CANCELLED, libvirt.VIR_ERR_AUTH_UNAVAILABLE,
         libvirt.VIR_ERR_ACCESS_DENIED}
_REFUSALS = {libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
             libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, libvirt.VIR_ERR_MIGRATE_UNSAFE}
# What the remote driver says when a connection cannot be made or breaks (libvirt's rpc/virnet*.c).
_UNRESOLVABLE_WORDS = ("unable to resolve address", "name or service not known", "temporary failure in name resolution",
                       "no address associated with hostname")
_UNREACHABLE_WORDS = ("connection refused", "no route to host", "network is unreachable", "unable to connect to server",
                      "failed to connect socket", "connection timed out", "host is unreachable")
_LOST_WORDS = ("client socket is closed", "end of file while reading data", "connection reset by peer",
               "broken pipe", "cannot recv data", "cannot write data", "connection closed")


def _unprinted(_ctx: object, _error: object) -> None:
    """libvirt's default handler prints every error on stderr, outside the JSON log; the adapters classify and log
    the errors they meet themselves."""


libvirt.registerErrorHandler(_unprinted, None)


def fault_of(code: int, domain: int, message: str) -> Fault:
    """What a libvirt error means for the advisor, from its code, domain (where in libvirt it arose) and words."""
    words = message.lower()
    if code in _AUTH:
        return Fault.AUTH_REFUSED
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return Fault.NO_GUEST
    if code == libvirt.VIR_ERR_OPERATION_ABORTED:
        return Fault.CANCELLED
    if code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_ERR_RPC,
                libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_OPERATION_TIMEOUT):
        if any(w in words for w in _UNRESOLVABLE_WORDS):
            return Fault.UNRESOLVABLE
        if any(w in words for w in _UNREACHABLE_WORDS):
            return Fault.UNREACHABLE
        if any(w in words for w in _LOST_WORDS) or code == libvirt.VIR_ERR_INVALID_CONN:
            return Fault.CONNECTION_LOST
    if domain == libvirt.VIR_FROM_QEMU or code in _REFUSALS:
        return Fault.REFUSED
    return Fault.OTHER


def _alive(conn: Any) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def classified(error: libvirt.libvirtError, conn: Any | None) -> tuple[Fault, bool]:
    """The fault of `error` met on `conn`, and whether it lay beyond that connection's daemon (its peer): a
    connection fault while ours to the daemon still works is the daemon's own, to the other host."""
    fault = fault_of(error.get_error_code() or 0, error.get_error_domain() or 0, error.get_error_message() or "")
    connection = fault in (Fault.UNRESOLVABLE, Fault.UNREACHABLE, Fault.AUTH_REFUSED, Fault.CONNECTION_LOST)
    return fault, connection and conn is not None and _alive(conn)


