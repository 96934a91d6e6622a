"""How a move's candidate targets fared: one HostAssessment per host, or all of them as columns (AssessedHosts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostAssessment:
    """How one candidate target fared: rejected with reasons, or eligible with a score (lower is better)."""

    host_id: str
    rejections: tuple[str, ...] = ()
    score: float | None = None
    cpu_after: float | None = None
    memory_after: float | None = None

    @property
    def eligible(self) -> bool:
        return not self.rejections


@dataclass(frozen=True)
class AssessedHosts:
    """Every host assessed for one move, as columns: cheap to build and to store for a thousand hosts, where a
    HostAssessment per host is not. Eligible hosts have a score and no rejection bits; `rejected[k]` has bit i set
    when filter `filters[i]` rejected host k. `rows()` gives the HostAssessments, eligible hosts best first, then
    the rejected ones by id, each with the names of its filters."""

    filters: tuple[str, ...]
    host_ids: tuple[str, ...]
    rejected: tuple[int, ...]
    score: tuple[float | None, ...]
    cpu_after: tuple[float, ...]
    memory_after: tuple[float, ...]

    def rows(self) -> list[HostAssessment]:
        names: dict[int, tuple[str, ...]] = {}
        eligible, refused = [], []
        for h, bits, score, cpu, memory in zip(self.host_ids, self.rejected, self.score, self.cpu_after,
                                               self.memory_after, strict=True):
            if bits == 0:
                eligible.append(HostAssessment(h, (), score, cpu, memory))
                continue
            if bits not in names:
                names[bits] = tuple(f for i, f in enumerate(self.filters) if bits >> i & 1)
            refused.append(HostAssessment(h, names[bits], None, cpu, memory))
        eligible.sort(key=lambda a: (a.score if a.score is not None else 0.0, a.host_id))
        refused.sort(key=lambda a: a.host_id)
        return eligible + refused
