"""The shared feature schema: the vectorised analytic model matches the scalar one; the hash is stable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.cost_features import (
    FEATURE_NAMES,
    TARGET_FEATURES,
    TARGETS,
    TECHNIQUES,
    analytic_arrays,
    build_features,
    build_features_from_inputs,
    monotone_constraints,
    schema_hash,
)
from advisor.physics import DEFAULT_CONSTANTS, analytic_point


def _random_inputs(n: int, seed: int = 7) -> list[tuple[MigrationInputs, Technique]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        inputs = MigrationInputs(
            memory_mib=float(rng.uniform(64, 16384)),
            dirty_rate_mib_s=float(rng.choice([0.0, rng.uniform(0, 300)])),
            bandwidth_mib_s=float(rng.uniform(1, 1200)),
            max_bandwidth_mib_s=float(rng.uniform(10, 1200)),
            max_downtime_ms=float(rng.choice([30.0, 300.0, 1000.0])),
        )
        rows.append((inputs, TECHNIQUES[int(rng.integers(len(TECHNIQUES)))]))
    return rows


def test_vectorised_analytic_matches_the_scalar_model_row_for_row() -> None:
    rows = _random_inputs(400)
    a = analytic_arrays(
        np.array([TECHNIQUES.index(t) for _, t in rows]),
        np.array([i.memory_mib for i, _ in rows]),
        np.array([i.dirty_rate_mib_s for i, _ in rows]),
        np.array([i.bandwidth_mib_s for i, _ in rows]),
        np.array([i.max_bandwidth_mib_s for i, _ in rows]),
        np.array([i.max_downtime_ms for i, _ in rows]),
    )
    expected = np.array([analytic_point(i, t) for i, t in rows], dtype=np.float64)
    np.testing.assert_allclose(a.total_time_ms, expected[:, 0], rtol=1e-12)
    np.testing.assert_allclose(a.downtime_ms, expected[:, 1], rtol=1e-12)
    np.testing.assert_allclose(a.transferred_mib, expected[:, 2], rtol=1e-12)
    assert (a.converges == expected[:, 3].astype(bool)).all()


def test_frame_and_inputs_builders_agree_on_units() -> None:
    frame = pd.DataFrame({
        "technique": ["precopy", "postcopy", "precopy_xbzrle"],
        "vm_memory_mib": [1024.0, 2048.0, 512.0],
        "dirty_rate_pages_per_s": [5000.0, 0.0, 20000.0],
        "available_bandwidth_mbps": [800.0, 900.0, 300.0],
        "max_bandwidth_mib_s": [100.0, 150.0, 50.0],
    })
    rows = [
        (
            # The units by their definitions: 4 KiB pages, megabits of 10^6 bits.
            MigrationInputs(r.vm_memory_mib, r.dirty_rate_pages_per_s * 4096 / 2**20,
                            r.available_bandwidth_mbps * 1e6 / 8 / 2**20, r.max_bandwidth_mib_s),
            Technique(r.technique),
        )
        for r in frame.itertuples()
    ]
    np.testing.assert_allclose(build_features(frame).matrix, build_features_from_inputs(rows).matrix, rtol=1e-12)
    assert build_features(frame).matrix.shape == (3, len(FEATURE_NAMES))


def test_schema_hash_is_stable_and_covers_the_physics() -> None:
    h = schema_hash()
    assert h == schema_hash() and len(h) == 64
    changed = dataclasses.replace(DEFAULT_CONSTANTS, compression_ratio=0.5)
    assert schema_hash(changed) != h


@pytest.mark.parametrize("target", TARGETS)
def test_constraints_line_up_with_each_targets_features(target: str) -> None:
    constraints = monotone_constraints(target)
    assert len(constraints) == len(TARGET_FEATURES[target])
    assert TARGET_FEATURES[target][0] == "technique" and constraints[0] == 0
    if target != "downtime_ms":
        # the sawtooth analytic downtime must not feed a monotone model
        assert "log_analytic_downtime_ms" not in TARGET_FEATURES[target]
        assert constraints[TARGET_FEATURES[target].index("log1p_dirty_rate_mib_s")] == 1
        assert constraints[TARGET_FEATURES[target].index("log_bandwidth_mib_s")] == -1


def test_compress_offsets_keep_time_falling_with_bandwidth() -> None:
    """Compression's offsets scale with bandwidth^-a (time) and bandwidth^(1-a) (data); the others are one pass."""
    bandwidths = np.linspace(5, 120, 24)
    for technique in TECHNIQUES:
        rows = [(MigrationInputs(1024, 20, float(b), 150), technique) for b in bandwidths]
        fs = build_features_from_inputs(rows)
        time_offset, data_offset = fs.offset("total_time_ms"), fs.offset("transferred_mib")
        assert (np.diff(time_offset) < 0).all()
        if technique is Technique.PRECOPY_COMPRESS:
            assert (np.diff(data_offset) > 0).all()
            # data = time x bandwidth, as on the wire
            np.testing.assert_allclose(data_offset, time_offset + np.log(bandwidths) - np.log(1000.0), rtol=1e-12)
        else:
            np.testing.assert_allclose(time_offset, np.log(1024 / bandwidths * 1000), rtol=1e-12)
            np.testing.assert_allclose(data_offset, np.log(1024.0), rtol=1e-12)
