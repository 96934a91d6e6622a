"""Overload detectors on known series (CloudSim's rules: trimmed history, fallback 0.7, LR one step ahead)."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.simulation.detectors import (
    HostLoad,
    InterQuartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    StaticThreshold,
    history_length,
    iqr,
    mad,
)


def load(history, requested, ram=1740.0):
    h = np.zeros((1, 30))
    h[0, : len(history)] = history
    return HostLoad(h, np.array([requested]), np.array([ram]), np.array([1000.0]))


@pytest.mark.parametrize(("requested", "over"), [(0.79, False), (0.8, False), (0.81, True)])
def test_static_threshold(requested, over):
    assert StaticThreshold(0.8).overloaded(load([], requested))[0] == over


@pytest.mark.parametrize(
    ("history", "length"),
    [([], 1), ([0.5], 1), ([0.5, 0.2, 0, 0], 2), ([0, 0, 0.3], 3), ([0.1] * 30, 30)],
)
def test_history_length_trims_the_zero_tail(history, length):
    assert history_length(load(history, 0).history)[0] == length


def test_mad_and_iqr_statistics():
    values = np.array([[0.2, 0.4] * 6])
    assert mad(values)[0] == pytest.approx(0.1)
    ramp = np.array([np.arange(50, 62) / 100])  # 0.50 .. 0.61
    assert iqr(ramp)[0] == pytest.approx(0.59 - 0.52)  # quartiles at round(0.25 x 13) and round(0.75 x 13)


@pytest.mark.parametrize(
    ("history", "requested", "over"),
    [
        ([0.2, 0.4] * 6, 0.76, True),  # threshold 1 - 2.5 x 0.1 = 0.75
        ([0.2, 0.4] * 6, 0.74, False),
        ([0.2, 0.4] * 5 + [0.2], 0.72, True),  # 11 values: fallback 0.7
        ([0.2, 0.4] * 5 + [0.2], 0.69, False),
        ([0.5] * 12, 0.99, False),  # no spread: threshold 1
    ],
)
def test_mad_detector(history, requested, over):
    assert MedianAbsoluteDeviation(2.5).overloaded(load(history, requested))[0] == over


@pytest.mark.parametrize(
    ("history", "requested", "over"),
    [
        (list(np.arange(61, 49, -1) / 100), 0.90, True),  # threshold 1 - 1.5 x 0.07 = 0.895
        (list(np.arange(61, 49, -1) / 100), 0.89, False),
        ([0.3] * 5, 0.71, True),  # short: fallback 0.7
    ],
)
def test_iqr_detector(history, requested, over):
    assert InterQuartileRange(1.5).overloaded(load(history, requested))[0] == over


@pytest.mark.parametrize(
    ("history", "ram", "predicted"),
    [
        ([0.8] * 10, 1740.0, 0.96),  # flat: 0.8 x 1.2
        ([0.9 - 0.05 * i for i in range(10)], 1740.0, 1.14),  # rising 0.05 per step: 0.95 next, x 1.2
        ([0.9 - 0.05 * i for i in range(10)], 20000.0, 1.2),  # a 320 s migration looks two steps ahead: 1.0 x 1.2
        ([0.8] * 10 + [0.1] * 5, 1740.0, 0.96),  # only the newest 10 values count
    ],
)
def test_local_regression_prediction(history, ram, predicted):
    assert LocalRegression(1.2).predicted(load(history, 0.0, ram))[0] == pytest.approx(predicted)


@pytest.mark.parametrize(
    ("history", "requested", "over"),
    [
        ([0.8] * 10, 0.0, False),
        ([0.84] * 10, 0.0, True),  # 1.008 >= 1
        ([0.9 - 0.05 * i for i in range(10)], 0.0, True),
        ([0.9] * 9, 0.69, False),  # 9 values: fallback 0.7 on the request
        ([0.9] * 9, 0.71, True),
    ],
)
def test_local_regression_detector(history, requested, over):
    assert LocalRegression(1.2).overloaded(load(history, requested))[0] == over


def test_detectors_are_vectorised_over_hosts():
    h = np.zeros((3, 30))
    h[0, :12] = [0.2, 0.4] * 6
    h[1, :12] = 0.5
    h[2, :5] = 0.3
    got = MedianAbsoluteDeviation(2.5).overloaded(HostLoad(h, np.array([0.76, 0.76, 0.76]), np.ones(3), np.ones(3)))
    assert got.tolist() == [True, False, True]
