"""A dirty-rate reading is blind where the guest is busy while page sampling reads ~0: page sampling compares page
contents, so a guest rewriting memory with the same values reads 0 while pre-copy never converges."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.physics import blind_dirty_rate
from advisor.physics.measurement import at_floor_dirty_rate, at_floor_reading, blind_reading

NAN = float("nan")

# (1 s rate MiB/s, longer window MiB, vCPU utilisation, blind, why)
CASES = [
    (0.0, 0.0, 1.0, True, "stress-ng rewriting the same values: vCPU busy, 0 at 1 s and 4 s"),
    (0.0, NAN, 0.9, True, "busy, 0 at 1 s, no longer window measured"),
    (0.5, 0.75, 0.5, True, "below one sampled page's worth in every window, half the vCPUs busy"),
    (0.0, 0.0, 0.1, False, "idle: a 0 reading is believed"),
    (0.0, 0.0, NAN, False, "vCPU utilisation not measured: nothing says busy"),
    (2.0, 0.0, 1.0, False, "the 1 s window saw writes"),
    (0.0, 8.0, 1.0, False, "the 4 s window saw a working set"),
    (0.0, 0.0, 0.49, False, "below the busy threshold"),
]


@pytest.mark.parametrize(("rate", "window", "vcpu", "blind", "why"), CASES)
def test_a_busy_guest_reading_nothing_is_a_blind_measurement(rate: float, window: float, vcpu: float, blind: bool,
                                                            why: str) -> None:
    got = blind_dirty_rate(np.array([rate]), np.array([window]), np.array([vcpu]))
    assert bool(got[0]) is blind, why
    assert blind_reading(rate, window, vcpu) is blind, why


def test_one_reading_is_judged_as_the_array_judges_its_row() -> None:
    """The served question's scalar rule and the tables' array rule agree on every row, edges and NaN included."""
    rng = np.random.default_rng(0)
    n = 20_000
    rate = rng.choice([0.0, 0.5, 0.999, 1.0, 1.001, 3.0, NAN, -0.0], n) * rng.choice([1.0, rng.random()], n)
    window = rng.choice([0.0, 0.999, 1.0, 1.5, NAN], n)
    vcpu = rng.choice([0.0, 0.49, 0.5, 0.51, 1.0, NAN], n)
    arrays = blind_dirty_rate(rate, window, vcpu)
    assert [blind_reading(float(r), float(w), float(v)) for r, w, v in zip(rate, window, vcpu, strict=True)] \
        == arrays.tolist()


def test_rows_are_judged_one_by_one() -> None:
    rate, window, vcpu = (np.array([c[i] for c in CASES], dtype=np.float64) for i in range(3))
    assert blind_dirty_rate(rate, window, vcpu).tolist() == [c[3] for c in CASES]


# (1 s rate MiB/s, longer window MiB, vCPU utilisation, at the floor, why)
FLOOR_CASES = [
    (2.0, 0.0, 1.0, True, "stress with its vCPUs busy: one sampled page at 1 s, nothing over 4 s"),
    (4.0, 0.0, 0.53, True, "two sampled pages at 1 s, nothing over 4 s, half the vCPUs busy"),
    (1.0, 0.5, 0.5, True, "the edges: one MiB at 1 s, half a MiB over 4 s, half busy"),
    (4.5, 0.0, 1.0, False, "more than two sampled pages at 1 s: a reading"),
    (2.0, 1.0, 1.0, False, "the longer window saw a MiB"),
    (2.0, NAN, 1.0, False, "no longer window measured: nothing to judge the 1 s reading by"),
    (2.0, 0.0, 0.3, False, "below the busy threshold"),
    (2.0, 0.0, NAN, False, "vCPU utilisation not measured"),
    (0.0, 0.0, 1.0, False, "reads nothing at 1 s either: blind already (blind_dirty_rate), not at the floor"),
]


@pytest.mark.parametrize(("rate", "window", "vcpu", "floor", "why"), FLOOR_CASES)
def test_a_busy_guest_read_at_page_samplings_floor(rate: float, window: float, vcpu: float, floor: bool,
                                                    why: str) -> None:
    assert bool(at_floor_dirty_rate(np.array([rate]), np.array([window]), np.array([vcpu]))[0]) is floor, why
    assert at_floor_reading(rate, window, vcpu) is floor, why
    assert not (floor and blind_reading(rate, window, vcpu)), "the two rules never take the same row"


def test_one_reading_at_the_floor_is_judged_as_the_array_judges_its_row() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    rate = rng.choice([0.0, 0.999, 1.0, 2.0, 4.0, 4.001, NAN], n)
    window = rng.choice([0.0, 0.999, 1.0, NAN], n)
    vcpu = rng.choice([0.0, 0.49, 0.5, 1.0, NAN], n)
    arrays = at_floor_dirty_rate(rate, window, vcpu)
    assert [at_floor_reading(float(r), float(w), float(v)) for r, w, v in zip(rate, window, vcpu, strict=True)] \
        == arrays.tolist()
