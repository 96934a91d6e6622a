"""Pushed VM samples read from a message's bytes as columns (advisor.api.sample_wire) are those the per-sample way
reads from the parsed message, to the bit; any message of another shape is left to the per-sample way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.api import sample_wire
from advisor.api.sample_messages import samples_from_pb, samples_parser, vm_sample
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.errors import InvalidArgument
from advisor.domain.validation import ID_PATTERN
from advisor.features.sample_columns import MEASURED, VmColumns

VALUE_FIELDS = ("cpu_utilization_ratio", "memory_used_mib", "dirty_rate_mib_s", "working_set_mib",
                "resident_memory_mib")
ids = st.one_of(st.sampled_from(["vm-1", "vm-2", "a.b:c@d/e_f-9", "x" * 128]),
                st.text(alphabet="aZ9._:@/- \n\té\x00", max_size=130))
values = st.one_of(st.floats(0, 1e6), st.floats(allow_nan=True, allow_infinity=True))
seconds = st.one_of(st.integers(1_700_000_000, 1_800_000_000), st.integers(-2**63, 2**63 - 1))
nanos = st.one_of(st.integers(0, 999_999_999), st.integers(-2**31, 2**31 - 1))


@st.composite
def vm_samples(draw: st.DrawFn) -> pb.VmSample:
    sample = pb.VmSample()
    if draw(st.integers(0, 9)):  # now and then none: the per-sample way says it is required
        sample.vm_id = draw(ids)
    if draw(st.integers(0, 9)):
        sample.time.seconds, sample.time.nanos = draw(seconds), draw(nanos)
    for name in VALUE_FIELDS:
        if draw(st.booleans()):
            setattr(sample, name, draw(values))
    return sample


@st.composite
def messages(draw: st.DrawFn) -> pb.PushSamplesRequest:
    request = pb.PushSamplesRequest(vm_samples=draw(st.lists(vm_samples(), max_size=6)))
    for _ in range(draw(st.integers(0, 2))):
        request.host_samples.add(host_id="h", cpu_utilization_ratio=0.5).time.seconds = 1_800_000_000
    return request


def per_sample(request: pb.PushSamplesRequest) -> list[object]:
    out: list[object] = []
    for i, s in enumerate(request.vm_samples):
        try:
            out.append(vm_sample(s, i))
        except InvalidArgument as error:
            out.append(str(error))
    return out


def assert_same(columns: VmColumns, request: pb.PushSamplesRequest) -> None:
    want = per_sample(request)
    got = columns.samples()
    assert got == want
    assert [t.hex() for t in columns.times_s.tolist()] == [s.time_s.hex() for s in got]  # to the bit
    assert [[v.hex() for v in row if not math.isnan(v)] for row in columns.values.tolist()] == [
        [float(getattr(s, name)).hex() for name in VALUE_FIELDS if s.HasField(name)] for s in request.vm_samples]


@settings(max_examples=400, deadline=None)
@given(messages())
def test_columns_read_from_the_bytes_are_the_samples_read_one_by_one(request: pb.PushSamplesRequest) -> None:
    columns = sample_wire.vm_columns(request.SerializeToString(), len(request.vm_samples))
    if columns is not None:
        assert_same(columns, request)
    plain = all(ID_PATTERN.fullmatch(s.vm_id) and s.HasField("time") and 0 <= s.time.seconds < 2**53
                and 0 <= s.time.nanos <= 999_999_999
                and all(math.isfinite(getattr(s, n)) for n in VALUE_FIELDS if s.HasField(n))
                for s in request.vm_samples)
    assert (columns is not None) == plain  # the plain shape is read, every other left to the per-sample way
    as_received = sample_wire.only_vm_columns(request.SerializeToString())  # no protobuf message built
    if request.host_samples or columns is None:
        assert as_received is None
    else:
        assert as_received is not None
        assert_same(as_received, request)


@pytest.mark.parametrize("extra", [
    b"\x12\x04\x0a\x02v2",  # another VmSample without a time
    b"\x1a\x00",  # an unknown field of the request
])
def test_a_message_of_another_shape_is_left_to_the_per_sample_way(extra: bytes) -> None:
    request = pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id="v1", time={"seconds": 1_800_000_000})])
    data = request.SerializeToString() + extra
    assert sample_wire.vm_columns(data, len(pb.PushSamplesRequest.FromString(data).vm_samples)) is None


@pytest.mark.parametrize("inner", [
    b"\x0a\x02v1\x12\x06\x08\x80\xb4\xa4\xd9\x06\x0a\x02v2",  # the id given twice (the parsed message: the last)
    b"\x0a\x02v1\x12\x06\x08\x80\xb4\xa4\xd9\x06\x19" + bytes(8) + b"\x19" + bytes(8),  # a value twice
    b"\x0a\x02v1\x12\x06\x08\x80\xb4\xa4\xd9\x06\x12\x02\x10\x01",  # the time twice (merged)
    b"\x0a\x02v1\x12\x06\x08\x80\xb4\xa4\xd9\x06\x38\x01",  # a field this version does not know
    b"\x0a\x02v1\x12\x06\x08\x80\xb4\xa4\xd9\x06\x19" + bytes(4),  # a value cut short
])
def test_a_sample_of_another_shape_is_left_to_the_per_sample_way(inner: bytes) -> None:
    data = bytes([0x12, len(inner)]) + inner
    try:
        count = len(pb.PushSamplesRequest.FromString(data).vm_samples)
    except DecodeError:  # a value cut short: such bytes never reach the columns, which refuse them too
        count = 1
    assert sample_wire.vm_columns(data, count) is None


def test_a_message_of_vm_samples_alone_is_read_as_columns_without_protobuf_any_other_parsed() -> None:
    parse = samples_parser(lambda data: ("parsed", data), limit_bytes=100)
    plain = pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id="v1", time={"seconds": 1_800_000_000})])
    columns = parse(plain.SerializeToString())
    assert isinstance(columns, VmColumns) and columns.samples() == [vm_sample(plain.vm_samples[0], 0)]
    assert isinstance(parse(b""), VmColumns) and len(parse(b"")) == 0  # an empty message: nothing to push
    with_host = pb.PushSamplesRequest(vm_samples=plain.vm_samples)
    with_host.host_samples.add(host_id="h1").time.seconds = 1_800_000_000
    for data in (with_host.SerializeToString(), plain.SerializeToString()[:-1], b"\xff\xff\xff",
                 pb.PushSamplesRequest(vm_samples=[plain.vm_samples[0]] * 8).SerializeToString()):  # past the limit
        assert parse(data) == ("parsed", data)


def test_vm_samples_come_as_columns_host_samples_one_by_one() -> None:
    request = pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id="v1", time={"seconds": 1_800_000_000,
                                                                               "nanos": 5}, dirty_rate_mib_s=2.5)])
    request.host_samples.add(host_id="h1", cpu_utilization_ratio=0.5).time.seconds = 1_800_000_000
    hosts, vms = samples_from_pb(request)
    assert [h.host_id for h in hosts] == ["h1"]
    assert isinstance(vms, VmColumns) and vms.samples() == [vm_sample(request.vm_samples[0], 0)]
    request.vm_samples.add(vm_id="v 2", time={"seconds": 1_800_000_000})  # not an id: one by one
    hosts, vms = samples_from_pb(request)
    assert isinstance(vms, list) and [v.vm_id for v in vms] == ["v1", "v 2"]


def test_the_fields_read_are_those_of_the_proto() -> None:
    """A field added to VmSample is read by the per-sample way until the columns read it too (its messages are
    of another shape here)."""
    fields = pb.VmSample.DESCRIPTOR.fields_by_name
    assert sorted(fields) == sorted(("vm_id", "time", *VALUE_FIELDS))
    assert tuple(fields[name].number << 3 | 1 for name in VALUE_FIELDS) == sample_wire._VALUE_TAGS
    assert (fields["vm_id"].number, fields["time"].number) == (1, 2)
    assert pb.PushSamplesRequest.DESCRIPTOR.fields_by_name["vm_samples"].number == 2
    assert MEASURED == ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s", "working_set_mib",
                        "resident_memory_mib")  # in turn
    assert np.array_equal(sample_wire._ID_BYTES.nonzero()[0],
                          sorted(map(ord, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/-")))


def test_the_warm_up_compiles_every_loop_a_push_runs() -> None:
    """After `warm_up` (at the server's start), a push compiles nothing more: the first one waits for nothing."""
    from advisor.api.sample_messages import warm_up
    from advisor.features import ring_kernels
    from advisor.features.samples import RecentSamples

    warm_up()
    loops = (sample_wire._read, ring_kernels.append, ring_kernels.put_values)
    compiled = [len(loop.signatures) for loop in loops]
    request = pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id="v1", time={"seconds": 1_800_000_000},
                                                            cpu_utilization_ratio=0.5, dirty_rate_mib_s=1.0)])
    columns = samples_parser(lambda data: None, limit_bytes=1000)(request.SerializeToString())
    store = RecentSamples()
    store.add_vm_columns(columns)
    store.add_vm_columns(columns[0:1])  # the VM's block has its columns now
    request.host_samples.add(host_id="h1", cpu_utilization_ratio=0.5).time.seconds = 1_800_000_000
    hosts, _ = samples_from_pb(request)
    store.add(hosts, [])
    assert [len(loop.signatures) for loop in loops] == compiled
