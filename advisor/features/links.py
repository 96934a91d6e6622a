"""The bandwidth a move can count on: each end's link less the traffic its hosts' samples show on it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.domain.model import Host
from advisor.domain.text import fmt_time
from advisor.features.samples import Latest


@dataclass(frozen=True)
class LinkTraffic:
    """What recent samples say of the traffic already on a move's link: the source host's sending, the target's
    receiving (MiB/s); None where no sample says."""

    source_tx: Latest | None = None
    target_rx: Latest | None = None


NO_TRAFFIC = LinkTraffic()  # no sample says anything of the link's traffic

# A link is never taken as less free than this share of its speed: host counters include the traffic of
# migrations that are about to end, and a migration gets a share of a busy link rather than none.
MIN_FREE_LINK_SHARE = 0.1


def free_link(source: Host, target: Host | None, traffic: LinkTraffic) -> tuple[float, str]:
    """The bandwidth a move can count on (MiB/s) and what it is: each end's link speed less the traffic its
    samples show in the move's direction, the lower of the two ends."""
    ends = [(source.network_bandwidth_mib_s, traffic.source_tx, f"{source.id} sends")]
    if target is not None:
        ends.append((target.network_bandwidth_mib_s, traffic.target_rx, f"{target.id} receives"))
    free, said = math.inf, []
    for speed, used, what in ends:
        if used is None:
            free = min(free, speed)
            continue
        free = min(free, max(speed - max(used.value, 0.0), speed * MIN_FREE_LINK_SHARE))
        said.append(f"{what} {used.value:.1f} MiB/s (sample {fmt_time(used.time_s)})")
    link = min(speed for speed, _, _ in ends)
    if not said:
        return link, f"link speed {link:.0f} MiB/s, no traffic sample"
    return free, f"free of link {link:.0f} MiB/s: " + ", ".join(said)
