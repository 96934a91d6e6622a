"""Pushed samples to domain values: VM samples as columns read from the message's bytes where it is of the plain
shape (advisor.api.sample_wire), else, as host samples always, one object each, in pieces: the server converts
thousands a push, and gives way to urgent calls between pieces (advisor.usecases.priority)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from advisor.api import sample_wire
from advisor.api.sample_wire import only_vm_columns, vm_columns
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.errors import InvalidArgument
from advisor.domain.model import HostSample, VmSample
from advisor.features import samples
from advisor.features.sample_columns import VmColumns

T = TypeVar("T")

PIECE = 250  # samples converted between two chances to give way: about 1 ms


def _time(msg: pb.HostSample | pb.VmSample, kind: str, index: int) -> float:
    """A sample's time; its field's name (`kind[index]`) is spelled out only for an error: thousands a push."""
    if not msg.HasField("time"):
        raise InvalidArgument(f"{kind}[{index}].time", "is required")
    nanos = msg.time.nanos
    if not 0 <= nanos <= 999_999_999:  # what google.protobuf.Timestamp allows
        raise InvalidArgument(f"{kind}[{index}].time.nanos", f"must be in [0, 999999999] (got {nanos})")
    return msg.time.seconds + nanos / 1e9


def optional(msg: object, name: str) -> float | None:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[attr-defined]


def host_sample(s: pb.HostSample, i: int) -> HostSample:
    return HostSample(host_id=s.host_id, time_s=_time(s, "host_samples", i),
                      cpu_utilization=optional(s, "cpu_utilization_ratio"),
                      memory_used_mib=optional(s, "memory_used_mib"),
                      network_rx_mib_s=optional(s, "network_rx_mib_s"),
                      network_tx_mib_s=optional(s, "network_tx_mib_s"), power_w=optional(s, "power_w"),
                      load_per_cpu=optional(s, "load_per_cpu_ratio"))


def vm_sample(s: pb.VmSample, i: int) -> VmSample:
    # Fields read inline (no helper per field): tens of thousands of samples a second come through here.
    has = s.HasField
    return VmSample(vm_id=s.vm_id, time_s=_time(s, "vm_samples", i),
                    cpu_utilization=s.cpu_utilization_ratio if has("cpu_utilization_ratio") else None,
                    memory_used_mib=s.memory_used_mib if has("memory_used_mib") else None,
                    dirty_rate_mib_s=s.dirty_rate_mib_s if has("dirty_rate_mib_s") else None,
                    working_set_mib=s.working_set_mib if has("working_set_mib") else None,
                    resident_memory_mib=s.resident_memory_mib if has("resident_memory_mib") else None)


def _pieces(items: Sequence[T], give_way: Callable[[], None]) -> Iterator[Iterable[tuple[int, T]]]:
    for start in range(0, len(items), PIECE):
        give_way()
        yield enumerate(items[start : start + PIECE], start)


def samples_from_pb(m: pb.PushSamplesRequest, give_way: Callable[[], None] = lambda: None
                    ) -> tuple[list[HostSample], VmColumns | list[VmSample]]:
    """The samples of a push, calling `give_way()` before each piece converted one by one."""
    hosts = [host_sample(s, i) for piece in _pieces(m.host_samples, give_way) for i, s in piece]
    columns = vm_columns(m.SerializeToString(), len(m.vm_samples))  # the bytes as upb wrote them: of fewer shapes
    if columns is not None:
        return hosts, columns
    return hosts, [vm_sample(s, i) for piece in _pieces(m.vm_samples, give_way) for i, s in piece]


def samples_parser(parse: Callable[[bytes], Any], limit_bytes: int) -> Callable[[bytes], Any]:
    """PushSamplesRequest's deserializer: a message of VM samples alone, of the plain shape, read from its bytes
    as columns (no protobuf message built, nor serialized again); any other message given to `parse`."""

    def parsed(data: bytes) -> Any:
        columns = only_vm_columns(data) if len(data) <= limit_bytes else None
        return parse(data) if columns is None else columns

    return parsed


def warm_up() -> None:
    """The compiled loops a push runs (reading its bytes, storing its samples), compiled or read from numba's
    cache before the first push (3 s with a cold cache, 0.3 s from it), as the planning engine's (app.py)."""
    sample_wire.warm_up()
    samples.warm_up()
