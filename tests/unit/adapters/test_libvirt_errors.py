"""libvirt's errors read into the advisor's faults, from the code, domain and words libvirt gives (the words
as libvirt 9 says them on this machine and in the lab)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

from advisor.adapters.libvirt_cold import cold_move
from advisor.adapters.libvirt_errors import fault_of
from advisor.domain.failures import Failure, Fault, Side, failure_of

SYSTEM, INTERNAL, RPC = libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC


@pytest.mark.parametrize(("code", "domain", "words", "fault"), [
    (SYSTEM, RPC, "Unable to resolve address 'hv9' service '16509': Name or service not known", Fault.UNRESOLVABLE),
    (SYSTEM, RPC, "unable to resolve address 'hv9': Temporary failure in name resolution", Fault.UNRESOLVABLE),
    (SYSTEM, RPC, "unable to connect to server at '127.0.0.1:1': Connection refused", Fault.UNREACHABLE),
    (SYSTEM, RPC, "Failed to connect socket to '/run/x/virtqemud-sock': No such file or directory", Fault.UNREACHABLE),
    (SYSTEM, RPC, "unable to connect to server at 'hv2:16514': No route to host", Fault.UNREACHABLE),
    (INTERNAL, RPC, "internal error: client socket is closed", Fault.CONNECTION_LOST),
    (SYSTEM, RPC, "End of file while reading data: Input/output error", Fault.CONNECTION_LOST),
    (SYSTEM, RPC, "Cannot recv data: Connection reset by peer", Fault.CONNECTION_LOST),
    (SYSTEM, RPC, "Cannot write data: Broken pipe", Fault.CONNECTION_LOST),
    (libvirt.VIR_ERR_INVALID_CONN, RPC, "invalid connection pointer in virDomainGetJobStats", Fault.CONNECTION_LOST),
    (libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_FROM_AUTH, "authentication failed: no client certificate",
     Fault.AUTH_REFUSED),
    (libvirt.VIR_ERR_ACCESS_DENIED, libvirt.VIR_FROM_ACCESS, "access denied: 'migrate' refused", Fault.AUTH_REFUSED),
    (libvirt.VIR_ERR_AUTH_UNAVAILABLE, RPC, "authentication unavailable: no polkit agent available",
     Fault.AUTH_REFUSED),
    (INTERNAL, libvirt.VIR_FROM_QEMU, "internal error: unable to execute QEMU command 'migrate-start-postcopy': "
                                      "Postcopy must be started after migration has been started", Fault.REFUSED),
    (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_QEMU, "Requested operation is not valid: domain is not "
                                                               "running", Fault.REFUSED),
    (libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_FROM_QEMU, "operation failed: migration out job: unexpectedly "
                                                              "failed", Fault.REFUSED),
    (libvirt.VIR_ERR_OPERATION_ABORTED, libvirt.VIR_FROM_QEMU, "operation aborted: migration out job: canceled by "
                                                               "client", Fault.CANCELLED),
    (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_QEMU, "Domain not found: no domain with matching name 'vm1'",
     Fault.NO_GUEST),
    (INTERNAL, libvirt.VIR_FROM_NONE, "internal error: something else", Fault.OTHER),
    (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_FROM_DOMAIN, "XML error: bad", Fault.OTHER),
])
def test_a_libvirt_error_is_read_into_a_fault(code: int, domain: int, words: str, fault: Fault) -> None:
    assert fault_of(code, domain, words) is fault


def test_the_fault_of_a_real_failed_connection() -> None:
    with pytest.raises(libvirt.libvirtError) as caught:
        libvirt.open("qemu+tcp://127.0.0.1:1/system")
    e = caught.value
    assert fault_of(e.get_error_code(), e.get_error_domain(), e.get_error_message()) is Fault.UNREACHABLE


def test_a_cold_move_to_a_target_that_does_not_answer_is_the_targets_fault() -> None:
    result = cold_move("test:///default", "qemu+tcp://127.0.0.1:1/system", "test", 1.0)
    assert not result.succeeded and result.detail == "untouched on the source"
    assert (result.fault, result.fault_peer) == (Fault.UNREACHABLE, True)
    assert failure_of(result.fault, Side.SOURCE, peer=result.fault_peer) is Failure.TARGET_UNREACHABLE


@pytest.mark.parametrize(("module", "printed"), [("libvirt", True), ("advisor.adapters.libvirt", False)])
def test_libvirt_prints_nothing_outside_the_log_once_the_adapter_is_loaded(module: str, printed: bool) -> None:
    # A daemon that cannot be reached: libvirt alone prints "libvirt: ... error : ..." on stderr, a line that is
    # not JSON in the advisor's log; the adapter silences libvirt's own printer (the advisor logs the error).
    script = (f"import {module}, libvirt\n"
              "try:\n    libvirt.open('qemu+unix:///system?socket=/nonexistent/advisor-test-sock')\n"
              "except libvirt.libvirtError as e:\n    print(e.get_error_code())\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}  # this checkout's advisor
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                         env=env)
    assert run.stdout.strip() == str(libvirt.VIR_ERR_SYSTEM_ERROR)
    assert ("libvirt:" in run.stderr) is printed, run.stderr
