"""One VM against every host: the filters and the weigher, for a single recommendation (RecommendTarget).

The same functions as the strategies use, on all hosts at once, with the rejections counted by filter and the
best few eligible hosts kept: about 0.1 ms for 1,000 hosts (benchmarks/bench_planner.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor.domain.model import AssessedHosts
from advisor.planning.engine.filters import FILTERS, Assessment, FilterPolicy, Rejection, assess, rejections
from advisor.planning.engine.results import Alternative
from advisor.planning.engine.snapshot import NO_HOST, BoolArray, ClusterArrays
from advisor.planning.engine.weighers import Scores, Weights, describe, weigh


@dataclass(frozen=True)
class Ranking:
    vm_id: str
    assessment: Assessment
    scores: Scores
    best: tuple[Alternative, ...]  # the best eligible hosts, best first
    rejections: tuple[Rejection, ...]

    @property
    def target_id(self) -> str:
        return self.best[0].host_id if self.best else ""


def rank_targets(cluster: ClusterArrays, vm: int, *, policy: FilterPolicy = FilterPolicy(),  # noqa: B008 - frozen dataclass defaults are safe to share
                 weights: Weights = Weights(), excluded: BoolArray | None = None, left: int = NO_HOST,  # noqa: B008 - frozen dataclass defaults are safe to share
                 keep: int = 5, mean_cpu: float | None = None) -> Ranking:
    """Every host assessed for `vm`; the `keep` best eligible ones described, the rejected counted by filter."""
    loads = cluster.loads
    a = assess(cluster, loads, vm, policy, excluded=excluded, left=left)
    if mean_cpu is None and weights.balance:
        mean_cpu = float(np.mean(cluster.cpu_ratio()))
    scores = weigh(cluster, loads, a, weights, mean_cpu=mean_cpu or 0.0)
    best = tuple(
        Alternative(cluster.host_ids[int(scores.hosts[p])], float(scores.total[p]), float(scores.cpu_after[p]),
                    float(scores.memory_after[p]), describe(scores, int(p), weights))
        for p in scores.order(keep).tolist()
    )
    return Ranking(cluster.vm_ids[vm], a, scores, best, rejections(cluster, loads, a, policy))


def all_assessments(cluster: ClusterArrays, ranking: Ranking) -> AssessedHosts:
    """Every host assessed, as columns (the domain's AssessedHosts): scores of the eligible hosts, the filters that
    rejected the others as bits, the loads after the move. The numbers behind each filter are in the
    `Ranking.rejections` examples. This runs inside every single-VM recommendation: array operations only."""
    a, s = ranking.assessment, ranking.scores
    score = np.full(a.hosts.shape[0], np.nan)
    position = np.full(cluster.n_hosts, -1, dtype=np.int64)
    position[a.hosts] = np.arange(a.hosts.shape[0])
    score[position[s.hosts]] = s.total
    bits = (a.rejected.astype(np.int64) << np.arange(len(FILTERS))[:, None]).sum(axis=0)
    ids = cluster.host_ids if a.all_hosts else tuple(cluster.host_ids[h] for h in a.hosts.tolist())
    # None for every host without a score (the rejected ones), through an object array: no loop in Python
    boxed = score.astype(object)
    boxed[np.isnan(score)] = None
    scores: tuple[float | None, ...] = tuple(boxed.tolist())
    return AssessedHosts(FILTERS, ids, tuple(bits.tolist()), scores, tuple(a.cpu_after.tolist()),
                         tuple(a.memory_after.tolist()))
