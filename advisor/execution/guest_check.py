"""Is a guest alive on its new host? Decided from one or two looks at it (`GuestPulse`), a few seconds apart.

The strongest evidence is its guest agent answering a ping: the guest's own OS runs and serves its virtio
channel. A guest without an agent channel can only be seen from outside: its domain running and its vCPUs
accumulating time between two looks. That shows QEMU runs the guest's CPUs, not that its OS is healthy (a kernel
spinning with interrupts off also burns vCPU time), and the verdict says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.execution.hypervisor import Agent, GuestPulse


@dataclass(frozen=True)
class GuestVerdict:
    answers: bool
    # What was checked and what it showed, as the migration's timeline says it.
    how: str


def at_once(first: GuestPulse) -> GuestVerdict | None:
    """The verdict from one look where it suffices (not running; the agent answered), else None: look again a few
    seconds later and `judge` both."""
    if not first.running:
        return GuestVerdict(False, f"not running ({first.state})")
    if first.agent is Agent.ANSWERED:
        return GuestVerdict(True, "running, its guest agent answered a ping")
    return None


def judge(first: GuestPulse, latest: GuestPulse, elapsed_s: float) -> GuestVerdict:
    """The verdict from two looks `elapsed_s` apart."""
    if (verdict := at_once(latest)) is not None:
        return verdict
    if latest.agent is Agent.SILENT:
        return GuestVerdict(False, f"running, but its guest agent did not answer a ping, twice {elapsed_s:.0f} s "
                                   "apart")
    if first.vcpu_time_s is None or latest.vcpu_time_s is None:
        return GuestVerdict(True, "running; no guest agent and no vCPU time reported, so only its state was checked")
    ran_ms = (latest.vcpu_time_s - first.vcpu_time_s) * 1000
    if ran_ms <= 0:
        return GuestVerdict(False, f"running, but its vCPUs did not run in {elapsed_s:.1f} s; no guest agent to ask")
    return GuestVerdict(True, f"running, its vCPUs ran {ran_ms:.0f} ms in {elapsed_s:.1f} s; no guest agent, so its "
                              "OS itself was not asked")
