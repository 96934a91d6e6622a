"""What the advisor last heard of each host's hypervisor: the telemetry that reads the hypervisors (the dirty-rate
collector) says which it tried and which answered. With the hosts' samples, these are the signs of life by which
an evacuation judges whether a host is down (advisor.domain.evacuation.judge_host)."""

from __future__ import annotations

import threading

from advisor.domain.evacuation import HostSigns


class HypervisorSigns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signs: dict[str, HostSigns] = {}

    def answered(self, host_id: str, at_s: float) -> None:
        with self._lock:
            self._signs[host_id] = HostSigns(at_s, at_s)

    def failed(self, host_id: str, at_s: float, error: str) -> None:
        with self._lock:
            before = self._signs.get(host_id, HostSigns())
            self._signs[host_id] = HostSigns(before.hypervisor_answered_s, at_s, error)

    def of(self, host_id: str, sample_s: float | None) -> HostSigns:
        """The host's signs of life, with the time of its newest sample."""
        with self._lock:
            signs = self._signs.get(host_id, HostSigns())
        return HostSigns(signs.hypervisor_answered_s, signs.hypervisor_tried_s, signs.hypervisor_error, sample_s)
