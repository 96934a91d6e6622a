"""The VM samples of a pushed message read straight from its bytes into columns, by a compiled loop: no Python
object per sample (issue 17: reading each protobuf sample into a Python object took 3.4 us of the 8.6 us of the
interpreter's time a VM sample cost; this way, 0.16 us from the bytes gRPC received).

Only the plain shape is read: the fields of this version, each once, an id of the id pattern's characters, a time,
finite values. Anything else (a field unknown here, a value NaN, a nanos field out of its range, a sample without an
id) makes `vm_columns` and `only_vm_columns` answer None, and the message goes the per-sample way
(advisor.api.sample_messages), which reads every case and names what is wrong.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from advisor.domain.validation import ID_PATTERN
from advisor.features.sample_columns import VmColumns

# The protobuf wire format (protobuf.dev/programming-guides/encoding): a tag is (field number << 3 | wire type).
_LEN, _I64, _VARINT = 2, 1, 0
_VM_SAMPLES = 2 << 3 | _LEN  # PushSamplesRequest.vm_samples; host_samples (1) are skipped here
_HOST_SAMPLES = 1 << 3 | _LEN
_VM_ID, _TIME = 1 << 3 | _LEN, 2 << 3 | _LEN
_SECONDS, _NANOS = 1 << 3 | _VARINT, 2 << 3 | _VARINT
# VmSample's optional doubles (fields 3 to 7), in the order of the columns (MEASURED)
_VALUE_TAGS = (3 << 3 | _I64, 4 << 3 | _I64, 5 << 3 | _I64, 6 << 3 | _I64, 7 << 3 | _I64)
MAX_ID = 128
_SHORTEST_SAMPLE = 7  # bytes of a VM sample in a request, at least: its tag and size, an id's 3, a time's 2
_MAX_SECONDS = 2**53  # a time beyond is no sample's: the per-sample way says so

# The characters of an id (ID_PATTERN's class), as a table by byte
_ID_BYTES = np.zeros(256, dtype=np.bool_)
_ID_BYTES[[b for b in range(128) if ID_PATTERN.fullmatch(chr(b))]] = True
assert ID_PATTERN.pattern == r"[A-Za-z0-9._:@/-]{1,128}", "the table above follows the pattern"


@numba.njit(cache=True, nogil=True)
def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """(value, position after) of the varint at `pos`; value -1 if it runs past `end` or beyond 63 bits."""
    value, shift = 0, 0
    while pos < end and shift < 63:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, pos


@numba.njit(cache=True, nogil=True)
def _time(buf: Any, pos: int, end: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """(seconds, nanos) of the google.protobuf.Timestamp in buf[pos:end]; seconds -1 if not of the plain shape
    (a field twice or unknown, seconds negative or past 2**53, nanos past 999,999,999)."""
    seconds, nanos = -1, -1
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, pos = _varint(buf, pos, end)
        if tag == _SECONDS and seconds < 0 and 0 <= number < _MAX_SECONDS:
            seconds = number
        elif tag == _NANOS and nanos < 0 and 0 <= number <= 999_999_999:
            nanos = number
        else:
            return -1, 0
    return max(seconds, 0), max(nanos, 0)  # a field not given is 0


@numba.njit(cache=True, nogil=True)
def _sample(buf: Any, pos: int, end: int, n: int, id_bytes: Any, ids: Any, out: int, seconds: Any, nanos: Any,
            values: Any, word: Any, double: Any) -> int:  # pragma: no cover - compiled
    """Read the VmSample in buf[pos:end] into row n of the columns, its id at ids[out:] followed by a newline;
    returns where the ids end now, or -1 if the sample is not of the plain shape."""
    for column in range(values.shape[1]):
        values[n, column] = math.nan
    has_id = has_time = False
    while pos < end:
        field, pos = _varint(buf, pos, end)
        if field in (_VM_ID, _TIME):
            length, pos = _varint(buf, pos, end)
            if length < 0 or pos + length > end:
                return -1
            if field == _VM_ID:
                if has_id or not 1 <= length <= MAX_ID:
                    return -1
                for k in range(pos, pos + length):
                    if not id_bytes[buf[k]]:
                        return -1
                    ids[out] = buf[k]
                    out += 1
                ids[out] = 10  # a newline: never in an id
                out += 1
                has_id = True
            else:
                s, ns = _time(buf, pos, pos + length)
                if has_time or s < 0:
                    return -1
                seconds[n], nanos[n] = s, ns
                has_time = True
            pos += length
            continue
        column = -1
        for k in range(len(_VALUE_TAGS)):
            if field == _VALUE_TAGS[k]:
                column = k
        if column < 0 or pos + 8 > end or not math.isnan(values[n, column]):
            return -1  # unknown here, cut short, or given twice
        bits = np.uint64(0)
        for k in range(7, -1, -1):  # little-endian
            bits = bits << np.uint64(8) | np.uint64(buf[pos + k])
        word[0] = bits
        if not math.isfinite(double[0]):
            return -1
        values[n, column] = double[0]
        pos += 8
    return out if has_id and has_time else -1  # without either, the per-sample way names what is missing


@numba.njit(cache=True, nogil=True)
def _read(buf: Any, id_bytes: Any, ids: Any, seconds: Any, nanos: Any, values: Any,
          hosts_skipped: bool) -> tuple[int, int]:  # pragma: no cover - compiled
    """Fill the columns from a PushSamplesRequest's bytes (`ids`: each id's bytes followed by a newline), host
    samples skipped if `hosts_skipped`; returns the number of VM samples and of the ids' bytes written, or -1
    samples if the message is not of the plain shape (or has host samples, not to be skipped)."""
    end, pos, n, out = len(buf), 0, 0, 0
    word = np.empty(1, dtype=np.uint64)  # a value's bits,
    double = word.view(np.float64)  # read as a double
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        size, pos = _varint(buf, pos, end)
        if size < 0 or pos + size > end:
            return -1, 0
        if tag == _VM_SAMPLES and n < len(seconds):
            out = _sample(buf, pos, pos + size, n, id_bytes, ids, out, seconds, nanos, values, word, double)
            if out < 0:
                return -1, 0
            n += 1
        elif tag != _HOST_SAMPLES or not hosts_skipped:
            return -1, 0
        pos += size
    return n, out


def _columns(data: bytes, most: int, hosts_skipped: bool) -> VmColumns | None:
    """The VM samples (`most` at most) of a PushSamplesRequest's bytes as columns, or None."""
    seconds = np.empty(most, dtype=np.int64)
    nanos = np.empty(most, dtype=np.int64)
    values = np.empty((most, len(_VALUE_TAGS)), dtype=np.float64)
    ids = np.empty(len(data) + most, dtype=np.uint8)  # each id's bytes, and a newline
    n, written = _read(np.frombuffer(data, dtype=np.uint8), _ID_BYTES, ids, seconds, nanos, values, hosts_skipped)
    if n < 0:
        return None
    # as the per-sample way computes a time (seconds + nanos / 1e9), to the bit
    return VmColumns(ids[: written - 1].tobytes().decode("ascii").split("\n") if n else [],
                     seconds[:n] + nanos[:n] / 1e9, values[:n])


def vm_columns(data: bytes, count: int) -> VmColumns | None:
    """The `count` VM samples of a PushSamplesRequest's bytes as columns (its host samples skipped), or None if
    the message is not of the plain shape (see the module's docstring)."""
    columns = _columns(data, count, hosts_skipped=True)
    return columns if columns is not None and len(columns) == count else None


def only_vm_columns(data: bytes) -> VmColumns | None:
    """The VM samples of a PushSamplesRequest's bytes as received, as columns, if it has no host samples and is
    of the plain shape; else None (the message is then parsed by protobuf, as any)."""
    return _columns(data, len(data) // _SHORTEST_SAMPLE, hosts_skipped=False)


def warm_up() -> None:
    """Read a message once: the compiled loop is compiled, or read from numba's cache, at its first call, which
    the first push after a start would otherwise wait for."""
    only_vm_columns(b"")
