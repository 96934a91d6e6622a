"""Hosts of a simulated data centre: CPU (PEs x MIPS), RAM, bandwidth and a power model per host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from advisor.simulation.arrays import FloatArray, IntArray, frozen
from advisor.simulation.power import HP_ML110_G4, HP_ML110_G5, IBM_X3550_X5675, PowerModel


@dataclass(frozen=True)
class HostType:
    name: str
    pes: int
    pe_mips: float
    ram_mb: float
    bw_mbit_s: float
    power: PowerModel

    @property
    def total_mips(self) -> float:
        return self.pes * self.pe_mips


# CloudSim's PlanetLab experiments (examples/power/Constants.java): 2 PEs, 4096 MB, 1 Gbit/s.
ML110_G4 = HostType("HP ML110 G4", 2, 1860.0, 4096.0, 1000.0, HP_ML110_G4)
ML110_G5 = HostType("HP ML110 G5", 2, 2660.0, 4096.0, 1000.0, HP_ML110_G5)
# Bitbrains VMs run on 2.4-2.93 GHz cores with up to tens of GB in use: a 2011 two-socket server fits them.
X3550_X5675 = HostType("IBM x3550 M3 X5675", 12, 3067.0, 65536.0, 1000.0, IBM_X3550_X5675)


@dataclass(frozen=True)
class Datacenter:
    """Per-host arrays (read-only) built from a sequence of host types; host i has type types[type_of[i]]."""

    types: tuple[HostType, ...]
    type_of: IntArray
    pes: IntArray = field(init=False)
    pe_mips: FloatArray = field(init=False)
    total_mips: FloatArray = field(init=False)
    ram_mb: FloatArray = field(init=False)
    bw_mbit_s: FloatArray = field(init=False)
    power_tables: FloatArray = field(init=False)
    max_power_w: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        t = self.type_of
        values = {
            "pes": np.array([h.pes for h in self.types], dtype=np.int64)[t],
            "pe_mips": np.array([h.pe_mips for h in self.types])[t],
            "total_mips": np.array([h.pes * h.pe_mips for h in self.types])[t],
            "ram_mb": np.array([h.ram_mb for h in self.types])[t],
            "bw_mbit_s": np.array([h.bw_mbit_s for h in self.types])[t],
            "power_tables": np.array([h.power.watts for h in self.types], dtype=np.float64)[t],
            "max_power_w": np.array([h.power.max_watts for h in self.types])[t],
        }
        object.__setattr__(self, "type_of", frozen(t))
        for name, value in values.items():
            object.__setattr__(self, name, frozen(value))

    @property
    def n_hosts(self) -> int:
        return int(self.type_of.shape[0])

    @staticmethod
    def alternating(types: Sequence[HostType], n_hosts: int) -> Datacenter:
        """Host i gets types[i % len(types)], as CloudSim's Helper.createHostList does."""
        return Datacenter(tuple(types), np.arange(n_hosts, dtype=np.int64) % len(types))


def planetlab_datacenter(n_hosts: int = 800) -> Datacenter:
    """CloudSim's setup: even hosts are ML110 G4, odd hosts G5."""
    return Datacenter.alternating((ML110_G4, ML110_G5), n_hosts)


def bitbrains_datacenter(n_hosts: int = 200) -> Datacenter:
    """The documented Bitbrains setup (see traces.load_bitbrains): identical 12-core X5675 servers."""
    return Datacenter.alternating((X3550_X5675,), n_hosts)
