"""A host whose answers a test scripts, reading by reading: for the telemetry readers, which must cope with
what real hosts do (a guest paused on two hosts mid-migration, readings that fail, counters that reset)."""

from __future__ import annotations

from advisor.execution.hypervisor import GuestFacts, GuestStats, HostFacts, HypervisorError


class ScriptedHost:
    def __init__(self, name: str, guests: list[GuestFacts], rates: dict[str, list[float]],
                 stats: list[list[GuestStats]] | None = None, networks: tuple[str, ...] = (),
                 local_disk_free_mib: float | None = None) -> None:
        self.name, self._guests, self._rates, self._stats = name, guests, rates, stats or []
        self.networks = networks
        self.local_disk_free_mib = local_disk_free_mib
        self.closed = 0

    @property
    def uri(self) -> str:
        return f"test://{self.name}"

    def host_facts(self) -> HostFacts:
        return HostFacts(f"uuid-{self.name}", self.name, 8, 16384, "Cascadelake-Server", self.networks,
                         self.local_disk_free_mib)

    def guests(self) -> list[GuestFacts]:
        return self._guests

    def guest_stats(self) -> list[GuestStats]:
        return self._stats.pop(0)

    def measure_dirty_rate(self, guest: str, seconds: int = 1) -> float:
        readings = self._rates[guest]
        if not readings:
            raise HypervisorError("migrating")
        return readings.pop(0)

    def close(self) -> None:
        self.closed += 1
