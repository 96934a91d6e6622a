"""The local multi-host lab: libvirt daemons in their own mount namespaces, tiny TCG guests, Prometheus.

See docs/lab.md for how it works and what it measured.
"""

from advisor.lab.lab import DEFAULT_ROOT, Lab
from advisor.lab.state import DirtySetting, GuestStatus, HostStatus, LabError, LabStatus, ServiceStatus

__all__ = ["DEFAULT_ROOT", "DirtySetting", "GuestStatus", "HostStatus", "Lab", "LabError", "LabStatus",
           "ServiceStatus"]
