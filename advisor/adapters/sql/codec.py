"""Domain values to JSON-ready dicts and back, for storage. Explicit, so a stored record never decodes wrongly."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from advisor.domain.assessments import AssessedHosts, HostAssessment
from advisor.domain.failures import Failure, Fault
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase, TimelineEntry
from advisor.domain.model import (
    Interval,
    MigrationCost,
    MigrationInputs,
    MigrationParameters,
    ModelRef,
    Move,
    MoveKind,
    Technique,
)
from advisor.domain.recommendation import (
    MoveState,
    MoveStatus,
    Priority,
    Recommendation,
    RecommendationState,
    StateChange,
)

# The fields of each dataclass encoded so far: `dataclasses.fields` is slow, and a recommendation holds a hundred.
_FIELDS: dict[type, tuple[str, ...]] = {}


def encode(value: Any) -> Any:
    """Dataclasses become dicts; frozensets become sorted lists; enums their values.

    Host assessments, a thousand per move on a large cluster, are rows rather than objects: both smaller and
    several times faster to write.
    """
    if isinstance(value, str | int | float | None):  # most values: first
        return value
    if isinstance(value, HostAssessment):
        return [value.host_id, list(value.rejections), value.score, value.cpu_after, value.memory_after]
    names = _FIELDS.get(type(value))
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: encode(getattr(value, name)) for name in names}
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    """One level of `encode`, for json's encoder to call on what it cannot write itself."""
    if isinstance(value, HostAssessment):
        return [value.host_id, value.rejections, value.score, value.cpu_after, value.memory_after]
    names = _FIELDS.get(type(value))
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: getattr(value, name) for name in names}
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not stored as JSON")


# dataclasses through `_plain` (host assessments as rows); numpy's numbers and keys other than strings as json writes
# them
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def to_json(value: Any) -> str:
    """`json.dumps(encode(value))`, the same document, written by orjson, which calls back only for dataclasses and
    sets: a plan of 5,000 moves holds 400,000 values (18 MB), and json's encoder took 0.22 s to write them where
    orjson takes 0.06 (`encode` visiting each in Python took longer still). The domain keeps no NaN (unknown is
    None), which orjson would write as null."""
    return orjson.dumps(value, default=_plain, option=_OPTIONS).decode()


def _interval(d: dict[str, float]) -> Interval:
    return Interval(d["low"], d["median"], d["high"])


def decode_cost(d: dict[str, Any]) -> MigrationCost:
    return MigrationCost(
        technique=Technique(d["technique"]),
        total_time_ms=_interval(d["total_time_ms"]),
        downtime_ms=_interval(d["downtime_ms"]),
        transferred_mib=_interval(d["transferred_mib"]),
        converges=d["converges"],
        model=ModelRef(**d["model"]),
        notes=tuple(d["notes"]),
        converge_probability=d.get("converge_probability"),
    )


def decode_inputs(d: dict[str, Any] | None) -> MigrationInputs | None:
    return None if d is None else MigrationInputs(**d)


def decode_parameters(d: dict[str, Any]) -> MigrationParameters:
    return MigrationParameters(**{**d, "technique": Technique(d["technique"]),
                                  "kind": MoveKind(d.get("kind", MoveKind.MIGRATE)),
                                  "migrate_disks": tuple(d.get("migrate_disks", ()))})


def decode_move(d: dict[str, Any]) -> Move:
    return Move(
        vm_id=d["vm_id"],
        source_host_id=d["source_host_id"],
        target_host_id=d["target_host_id"],
        parameters=decode_parameters(d["parameters"]),
        predicted_cost=decode_cost(d["predicted_cost"]),
        reasons=tuple(d["reasons"]),
        assessments=tuple(decode_assessments(d["assessments"])),
        rejection_counts=tuple((str(k), int(n), str(h)) for k, n, h in d.get("rejection_counts", ())),
        hosts_assessed=int(d.get("hosts_assessed", len(d["assessments"]))),
        inputs=decode_inputs(d.get("inputs")),
    )


def _unpacked(kind: str, text: str) -> list[Any]:
    out = array(kind)
    out.frombytes(base64.b64decode(text))
    return out.tolist()


# An assessments row of columns (AssessedHosts) starts with this; rows written before it are zlib-compressed JSON,
# and a zlib stream never starts with a zero byte.
_COLUMNS = b"\x00AH2"


def pack_assessments(found: Sequence[HostAssessment] | AssessedHosts) -> bytes:
    """Every host assessed for one move, as a row's body. A thousand hosts are written inside every single-VM
    recommendation, so columns (AssessedHosts) go as binary: the host ids (newline-free: validation allows no
    control characters) and the rejection bits compressed, as they compress well and fast; the scores (NaN: none)
    and the loads after the move raw, as floats compress poorly and slowly. A list of rows goes as compressed
    JSON."""
    if not isinstance(found, AssessedHosts):
        rows = [[a.host_id, list(a.rejections), a.score, a.cpu_after, a.memory_after] for a in found]
        return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 1)
    blocks = (zlib.compress("\n".join(found.host_ids).encode(), 1),
              zlib.compress(np.array(found.rejected, "<u8").tobytes(), 1),
              np.array(found.score, "<f8").tobytes(),
              np.array(found.cpu_after, "<f4").tobytes(),
              np.array(found.memory_after, "<f4").tobytes())
    head = json.dumps({"filters": list(found.filters), "blocks": [len(b) for b in blocks]}).encode()
    return b"".join((_COLUMNS, len(head).to_bytes(4, "little"), head, *blocks))


def unpack_assessments(body: bytes) -> list[HostAssessment]:
    """The hosts `pack_assessments` stored (or an earlier version: compressed JSON of rows or of columns)."""
    if not body.startswith(_COLUMNS):
        return decode_assessments(json.loads(zlib.decompress(body)))
    at = len(_COLUMNS) + 4
    head_size = int.from_bytes(body[len(_COLUMNS):at], "little")
    head = json.loads(body[at:at + head_size])
    at += head_size
    blocks = []
    for size in head["blocks"]:
        blocks.append(body[at:at + size])
        at += size
    ids_text = zlib.decompress(blocks[0]).decode()
    score = np.frombuffer(blocks[2], "<f8")
    return AssessedHosts(tuple(head["filters"]), tuple(ids_text.split("\n")) if ids_text else (),
                         tuple(np.frombuffer(zlib.decompress(blocks[1]), "<u8").tolist()),
                         tuple(None if math.isnan(v) else v for v in score.tolist()),
                         tuple(np.frombuffer(blocks[3], "<f4").tolist()),
                         tuple(np.frombuffer(blocks[4], "<f4").tolist())).rows()


def decode_assessments(stored: list[Any] | dict[str, Any]) -> list[HostAssessment]:
    """Assessments as JSON, in a recommendation's body (rows) or in an assessments row of an earlier version
    (rows, or columns as base64-packed arrays)."""
    if isinstance(stored, dict):
        ids = tuple(stored["host_ids"].split("\n")) if stored["host_ids"] else ()
        score = tuple(None if math.isnan(v) else v for v in _unpacked("d", stored["score"]))
        return AssessedHosts(tuple(stored["filters"]), ids, tuple(_unpacked("L", stored["rejected"])), score,
                             tuple(_unpacked("f", stored["cpu_after"])),
                             tuple(_unpacked("f", stored["memory_after"]))).rows()
    return [HostAssessment(host_id, tuple(rejections), score, cpu_after, memory_after)
            for host_id, rejections, score, cpu_after, memory_after in stored]


def decode_result(d: dict[str, Any]) -> MigrationResult:
    """A migration's outcome; one stored before failures were classified has none (and 0 for what was not
    measured, which it keeps)."""
    fault, failure = d.get("fault"), d.get("failure")
    return MigrationResult(**{**d, "fault": None if fault is None else Fault(fault),
                              "failure": None if failure is None else Failure(failure)})


def decode_migration(d: dict[str, Any]) -> MigrationRecord:
    outcome = d["outcome"]
    return MigrationRecord(
        operation_id=d["operation_id"],
        recommendation_id=d["recommendation_id"],
        vm_id=d["vm_id"],
        source_host_id=d["source_host_id"],
        target_host_id=d["target_host_id"],
        parameters=decode_parameters(d["parameters"]),
        predicted=decode_cost(d["predicted"]),
        created_at_s=d["created_at_s"],
        phase=Phase(d["phase"]),
        timeline=tuple(TimelineEntry(e["at_ms"], Phase(e["phase"]), e["message"]) for e in d["timeline"]),
        outcome=None if outcome is None else decode_result(outcome),
        finished_at_s=d["finished_at_s"],
        actor=d["actor"],
        move_index=d.get("move_index", 0),
        inputs=decode_inputs(d.get("inputs")),
        attempt=d.get("attempt", 1),
        predicted_mib_s=d.get("predicted_mib_s"),
    )


def decode_recommendation(d: dict[str, Any]) -> Recommendation:
    return Recommendation(
        id=d["id"],
        goal=d["goal"],
        created_at_s=d["created_at_s"],
        moves=tuple(decode_move(m) for m in d["moves"]),
        summary=d["summary"],
        state=RecommendationState.parse(d["state"]),
        decided_by=d["decided_by"],
        decision_reason=d["decision_reason"],
        decided_at_s=d["decided_at_s"],
        revision=d.get("revision", 0),
        move_status=tuple(MoveStatus(MoveState(m["state"]), m["attempts"], m["operation_id"])
                          for m in d.get("move_status", ())),
        priority=Priority(**d["priority"]) if "priority" in d else Priority(3, ""),
        benefit=d.get("benefit"),
        benefit_unit=d.get("benefit_unit", ""),
        benefit_over_cost=d.get("benefit_over_cost"),
        automation=d.get("automation", "manual"),
        cluster=d.get("cluster", ""),
        expiry_reason=d.get("expiry_reason", ""),
        cancel_requested=d.get("cancel_requested", False),
        run_requested_by=d.get("run_requested_by", ""),
        superseded_by=d.get("superseded_by", ""),
        history=tuple(StateChange(h["at_s"], RecommendationState.parse(h["state"]), h["actor"], h["reason"])
                      for h in d.get("history", ())),
    )
