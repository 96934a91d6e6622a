"""Trace-driven VM-consolidation simulator reproducing CloudSim 3.0.3's PlanetLab experiments (numpy only).

Self-contained: nothing else of `advisor` is imported. See docs/simulation.md for what is reproduced and how
closely, and `interface.py` for the contract a policy (e.g. a cost-aware one) implements.
"""

from advisor.simulation.datacenter import Datacenter, HostType, bitbrains_datacenter, planetlab_datacenter
from advisor.simulation.engine import Simulation, SimulationConfig, SimulationError, simulate
from advisor.simulation.interface import InFlightMigration, Migration, Policy, Snapshot
from advisor.simulation.metrics import SimulationResult
from advisor.simulation.migration import MigrationTimeModel, cloudsim_migration_time
from advisor.simulation.policies import PolicyInfo, make_policy, policy_info, policy_names, register_policy
from advisor.simulation.traces import (
    Trace,
    TraceError,
    bitbrains_day,
    bitbrains_day_count,
    load_bitbrains,
    load_planetlab,
    read_bitbrains,
)

__all__ = [
    "Datacenter",
    "HostType",
    "InFlightMigration",
    "Migration",
    "MigrationTimeModel",
    "Policy",
    "PolicyInfo",
    "Simulation",
    "SimulationConfig",
    "SimulationError",
    "SimulationResult",
    "Snapshot",
    "Trace",
    "TraceError",
    "bitbrains_datacenter",
    "bitbrains_day",
    "bitbrains_day_count",
    "cloudsim_migration_time",
    "load_bitbrains",
    "load_planetlab",
    "make_policy",
    "planetlab_datacenter",
    "policy_info",
    "policy_names",
    "read_bitbrains",
    "register_policy",
    "simulate",
]
