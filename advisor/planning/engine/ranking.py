"""One VM against every host: the filters and the weigher, for a single recommendation (RecommendTarget).

The same functions as the strategies use, on all hosts at once, with the rejections counted by filter and the
best few eligible hosts kept: about 0.1 ms for 1,000 hosts (benchmarks/bench_planner.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from advisor.domain.assessments import AssessedHosts, HostAssessment
from advisor.planning.engine.filters import FILTERS, Assessment, FilterPolicy, Rejection, assess, rejections
from advisor.planning.engine.results import Alternative
from advisor.planning.engine.schedule import schedule
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

    @property
    def assessed(self) -> int:
        return int(self.assessment.hosts.shape[0])

    @property
    def eligible(self) -> int:
        return len(self.scores)

    def why_target(self) -> str:
        """Why the best host is the target of a move (RecommendTarget)."""
        best = self.best[0]
        runner = f"; next {self.best[1].host_id} (score {self.best[1].score:.3f})" if len(self.best) > 1 else ""
        return (f"target {best.host_id}: the best of {_hosts(self.eligible, 'eligible host')}, {best.detail}"
                f"{runner}; {self.assessed - self.eligible} rejected")

    def why_host(self) -> str:
        """Why the best host is where a new VM goes (PlaceVm)."""
        best = self.best[0]
        return (f"host {best.host_id}: the best of {_hosts(self.eligible, 'eligible host')}, {best.detail}; "
                f"{self.assessed - self.eligible} rejected")

    def why_rejected(self) -> tuple[str, ...]:
        return tuple(f"rejected by {f}: {_hosts(n, 'host')}, e.g. {h}: {r}" for f, n, h, r in self.rejections)

    def why_none(self) -> str:
        """Why no host is eligible: the rejections counted by filter, with an example each."""
        return "; ".join(f"{f}: {n} (e.g. {h}: {r})" for f, n, h, r in self.rejections)

    def kept(self) -> tuple[HostAssessment, ...]:
        """The best eligible hosts as the domain keeps them in a move."""
        return tuple(HostAssessment(h.host_id, (), h.score, h.cpu_after, h.memory_after) for h in self.best)

    def rejection_counts(self) -> tuple[tuple[str, int, str], ...]:
        return tuple((f, n, h) for f, n, h, _ in self.rejections)


def _hosts(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _named(cluster: ClusterArrays, host_ids: Collection[str]) -> BoolArray | None:
    """The hosts named (unknown ids ignored) as a mask over the cluster's hosts; None when none is named. Looked
    up in the snapshot's id index: `np.isin` over the ids made an array of a thousand strings on every call."""
    if not host_ids:
        return None
    mask = np.zeros(cluster.n_hosts, dtype=bool)
    for host_id in host_ids:
        with contextlib.suppress(KeyError):
            mask[cluster.host_index(host_id)] = True
    return mask


def rank_targets(cluster: ClusterArrays, vm: int, *, policy: FilterPolicy = FilterPolicy(),  # noqa: B008 - frozen dataclass defaults are safe to share
                 weights: Weights = Weights(), excluded: Collection[str] = (), left: int = NO_HOST,  # noqa: B008 - frozen dataclass defaults are safe to share
                 keep: int = 5, mean_cpu: float | None = None) -> Ranking:
    """Every host assessed for `vm` (but those `excluded`, by id); the `keep` best eligible ones described, the
    rejected counted by filter."""
    loads = cluster.loads
    a = assess(cluster, loads, vm, policy, excluded=_named(cluster, excluded), left=left)
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
    score[a.positions] = s.total  # the eligible hosts' columns, in the order weigh scored them
    bits = np.zeros(a.hosts.shape[0], dtype=np.int64)
    for row in np.flatnonzero(a.rejected.any(axis=1)).tolist():  # most filters reject no host
        bits[a.rejected[row]] |= 1 << row
    ids = cluster.host_ids if a.all_hosts else tuple(cluster.host_ids[h] for h in a.hosts.tolist())
    # None for every host without a score (the rejected ones), through an object array: no loop in Python
    boxed = score.astype(object)
    boxed[np.isnan(score)] = None
    scores: tuple[float | None, ...] = tuple(boxed.tolist())
    return AssessedHosts(FILTERS, ids, tuple(bits.tolist()), scores, tuple(a.cpu_after.tolist()),
                         tuple(a.memory_after.tolist()))


def warm_up() -> None:
    """Rank a VM of a two-host cluster once, weighing every component, and schedule one move: the filters' and
    weighers' compiled loops (advisor.planning.engine.kernels) and the schedule's are compiled, or read from numba's
    cache, at their first call (0.7 s with a cold cache), which the first scheduler to ask (or plan) after a start
    would otherwise wait for."""
    two = np.array([8.0, 8.0])
    cluster = ClusterArrays.build(host_ids=("a", "b"), host_cores=two, host_memory_mib=two * 1024,
                                  vm_ids=("v",), vm_host=np.array([0]), vm_vcpus=np.array([1.0]),
                                  vm_memory_mib=np.array([1024.0]), vm_cpu=np.array([0.5]))
    rank_targets(cluster, 0, weights=Weights(balance=1.0, energy=1.0))
    schedule(np.array([0]), np.array([1]), np.array([1.0]))
