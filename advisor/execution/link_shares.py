"""A migration's share of the links it starts on beside others: the cap the executor gives it, by the rule a plan's
schedule prices moves by (planning.links.link_share)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace

from advisor.domain.model import MigrationParameters
from advisor.planning.links import link_share


def share_of_links(cap_mib_s: float, source: str, target: str, running: Iterable[tuple[str, str]],
                   links: Callable[[str], float | None] = lambda host: None) -> float:
    """The bandwidth a migration from `source` to `target` with its own cap `cap_mib_s` (0: none, as libvirt takes
    it) gets when it starts beside the `running` ones (source, target pairs), itself counted: `link_share` of each
    host's link (`links`; a host whose link is not known is taken at the migration's cap). Infinite when neither
    a link nor a cap bounds it. Those running keep what they started with."""
    pairs = list(running)
    out_of_source = 1 + sum(s == source for s, _ in pairs)
    into_target = 1 + sum(t == target for _, t in pairs)
    cap = cap_mib_s if cap_mib_s > 0 else math.inf
    source_link, target_link = links(source), links(target)
    return link_share(cap if source_link is None else source_link, cap if target_link is None else target_link,
                      out_of_source, into_target, cap)


def shared(parameters: MigrationParameters, share: float) -> MigrationParameters:
    """`parameters` at `share` of their bandwidth, post-copy's cap included (it was predicted at the same); without
    a cap of their own (0), the share is theirs."""
    if parameters.bandwidth_mib_s <= 0:
        return replace(parameters, bandwidth_mib_s=share)
    scale = share / parameters.bandwidth_mib_s
    return replace(parameters, bandwidth_mib_s=share,
                   postcopy_bandwidth_mib_s=parameters.postcopy_bandwidth_mib_s * scale)
