"""Prometheus answers to domain samples: the pure half of the Prometheus source.

`convert` turns instant-query results (the JSON `result` lists the HTTP API returns) into `HostSample`s and
`VmSample`s, `convert_range` a range query into one VM's history. Missing series stay unmeasured (None), stale,
non-finite, out-of-range and unmapped values are skipped and counted by reason (see the package's docstring).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from advisor.adapters.prometheus.queries import (
    METRICS,
    VALUE_LIMITS,
    EntityKind,
    MetricQuery,
    PrometheusQueries,
    QueryResult,
)
from advisor.domain import validation
from advisor.domain.model import HostSample, VmSample

log = logging.getLogger("advisor.telemetry.prometheus")

def _number(raw: object) -> float:
    """A sample value as the API returns it: [time, "1.5"] -> 1.5 (also "NaN", "+Inf")."""
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 2:
        raise ValueError(f"not a [time, value] pair: {raw!r}")
    # float() takes JSON true/false as 1/0: a value that is no number is no measurement
    if isinstance(raw[1], bool) or not isinstance(raw[1], (str, int, float)):
        raise ValueError(f"not a number: {raw[1]!r}")
    return float(raw[1])


def _checked(name: str, value: float, tolerance: float) -> float | None:
    """The value in domain units if plausible, else None (out of range)."""
    limit = VALUE_LIMITS[name]
    if limit is None:
        if not -tolerance <= value <= 1 + tolerance:
            return None
        return min(max(value, 0.0), 1.0)
    if value < 0 or value > limit:
        return None
    return value


def _entity(queries: PrometheusQueries, kind: EntityKind, labels: Mapping[str, Any], label: str) -> str | None:
    raw = labels.get(label)
    if not isinstance(raw, str):
        return None
    return queries.host_id(raw) if kind == "host" else queries.vm_id(raw)


def _newest(
    queries: PrometheusQueries, kind: EntityKind, label: str, result: QueryResult
) -> dict[str, float]:
    """entity id -> unix time of its newest raw sample, from a freshness query's result."""
    newest: dict[str, float] = {}
    for entry in result:
        labels = entry.get("metric")
        entity = _entity(queries, kind, labels, label) if isinstance(labels, Mapping) else None
        if entity is None:
            continue
        try:
            ts = _number(entry.get("value"))
        except (TypeError, ValueError):
            continue
        if math.isfinite(ts):
            newest[entity] = max(ts, newest.get(entity, -math.inf))
    return newest


def _read(
    entry: Mapping[str, Any],
    name: str,
    kind: EntityKind,
    label: str,
    queries: PrometheusQueries,
    known: Collection[str],
    newest: Mapping[str, float],
    now_s: float,
) -> tuple[str, float, float] | str:
    """(entity id, value in domain units, sample time) of one result entry, or the reason it is skipped."""
    labels = entry.get("metric") if isinstance(entry, Mapping) else None
    if not isinstance(labels, Mapping):
        return "malformed"
    entity = _entity(queries, kind, labels, label)
    if entity is None:
        return "unlabelled"
    if entity not in known:
        return f"unknown_{kind}"
    raw = entry.get("value")
    try:
        value = _number(raw)
        eval_ts = float(raw[0])  # type: ignore[index]  # _number checked the shape
    except (TypeError, ValueError, IndexError):
        return "malformed"
    value *= getattr(queries, name).scale
    if not math.isfinite(value):
        return "non_finite"
    ts = newest.get(entity, eval_ts)
    if not math.isfinite(ts):
        return "malformed"
    # A time ahead of the clock (an exporter's or Prometheus's clock wrong) would date the entity's whole
    # sample there, and ingestion would refuse it with the good metrics in it: this metric alone is dropped.
    if ts > now_s + validation.MAX_FUTURE_SKEW_S:
        return "future"
    if now_s - ts > queries.max_age_s:
        return "stale"
    checked = _checked(name, value, queries.ratio_tolerance)
    if checked is None:
        log.debug("out of range", extra={"metric": name, "entity": entity, "value": value})
        return "out_of_range"
    return entity, checked, ts


@dataclass(frozen=True)
class Converted:
    host_samples: list[HostSample]
    vm_samples: list[VmSample]
    # Series dropped, by reason: unknown_host, unknown_vm, unlabelled, stale, future, non_finite, out_of_range,
    # duplicate, malformed.
    skipped: dict[str, int]
    # Known entities left without a value, by metric name (whatever the reason: no series, stale, NaN...).
    missing: dict[str, int]


def convert(
    results: Mapping[str, QueryResult],
    freshness: Mapping[str, QueryResult],
    queries: PrometheusQueries,
    hosts: Collection[str],
    vms: Collection[str],
    now_s: float,
) -> Converted:
    """Samples for the known `hosts` and `vms` from instant-query results, by metric name (see `METRICS`).

    A metric absent from `results` is not measured; one absent from `freshness` is not checked for staleness.
    Each sample's time is the newest raw sample time among its metrics (the evaluation time where unknown), so
    polling twice between scrapes gives the same samples.
    """
    known = {"host": hosts if isinstance(hosts, (set, frozenset)) else frozenset(hosts),
             "vm": vms if isinstance(vms, (set, frozenset)) else frozenset(vms)}
    skipped: dict[str, int] = {}
    missing: dict[str, int] = {}
    values: dict[EntityKind, dict[str, dict[str, float]]] = {"host": {}, "vm": {}}
    times: dict[EntityKind, dict[str, float]] = {"host": {}, "vm": {}}

    for name, kind, attr in METRICS:
        if name not in results:
            continue
        label = queries.label_for(name)
        newest = _newest(queries, kind, label, freshness[name]) if name in freshness else {}
        for entry in results[name]:
            read = _read(entry, name, kind, label, queries, known[kind], newest, now_s)
            if isinstance(read, str):
                skipped[read] = skipped.get(read, 0) + 1
                continue
            entity, value, sample_ts = read
            row = values[kind].setdefault(entity, {})
            if attr in row:
                skipped["duplicate"] = skipped.get("duplicate", 0) + 1
                continue
            row[attr] = value
            times[kind][entity] = max(sample_ts, times[kind].get(entity, -math.inf))
        have = values[kind]
        lacking = sum(1 for e in known[kind] if attr not in have.get(e, {}))
        if lacking:
            missing[name] = lacking

    host_samples = [HostSample(host_id=h, time_s=times["host"][h], **row)
                    for h, row in sorted(values["host"].items())]
    vm_samples = [VmSample(vm_id=v, time_s=times["vm"][v], **row) for v, row in sorted(values["vm"].items())]
    return Converted(host_samples, vm_samples, skipped, missing)


def convert_range(
    name: str, result: Sequence[Mapping[str, Any]], queries: PrometheusQueries
) -> list[tuple[float, float]]:
    """(time, value) points of a range query's result in domain units, time-ordered; NaN/Inf and implausible
    values dropped. Several series (one entity under several label values) are merged, the first one winning."""
    query: MetricQuery = getattr(queries, name)
    points: dict[float, float] = {}
    for entry in result:
        raw_values = entry.get("values") if isinstance(entry, Mapping) else None
        if not isinstance(raw_values, Sequence):
            continue
        for pair in raw_values:
            try:
                ts = float(pair[0])
                value = _number(pair) * query.scale
            except (TypeError, ValueError, IndexError):
                continue
            if not (math.isfinite(value) and math.isfinite(ts)):
                continue
            checked = _checked(name, value, queries.ratio_tolerance)
            if checked is not None:
                points.setdefault(ts, checked)
    return sorted(points.items())


# -- the adapter ---------------------------------------------------------------------------------------------

