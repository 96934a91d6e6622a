"""The profile parameters that make the physics fit a host the SNU data never described: compression bound by
the CPU rather than the link, a guest that dirties more slowly while it migrates; and profiles stored before
those parameters existed."""

import json
from pathlib import Path

import numpy as np
import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.features.inputs import InputTable
from advisor.ml.profile_store import EARLIER_PARAMETERS, ProfileStore, schema_hash
from advisor.ml.profiles import PARAMETERS, PRIOR, Observed, calibrate, physics


def host(n: int, truth: dict[str, float], techniques: tuple[Technique, ...], seed: int = 3
         ) -> tuple[InputTable, Observed]:
    """n migrations, caps 8-64 MiB/s, of a host that follows the physics with `truth`, give or take 5%."""
    rng = np.random.default_rng(seed)
    rows = [(MigrationInputs(float(rng.uniform(64, 256)), float(rng.uniform(4, 24)), 1250.0,
                             float(rng.choice([8, 16, 32, 64])), 300.0, memory_configured_mib=512.0,
                             working_set_mib=float(rng.uniform(8, 48)), deadline_ms=90_000, host_profile="rig"),
             techniques[k % len(techniques)]) for k in range(n)]
    table = InputTable.from_rows(rows)
    a = physics(table, {**PRIOR, **truth})
    noise = rng.lognormal(0.0, 0.05, size=(3, n))
    return table, Observed(a.total_time_ms * noise[0], a.downtime_ms * noise[1], a.transferred_mib * noise[2],
                           a.converges.copy())


def test_compression_bound_by_the_cpu_is_learnt_and_slows_only_fast_links() -> None:
    truth = {"compress_mib_s": 25.0}
    table, observed = host(60, truth, (Technique.PRECOPY_COMPRESS, Technique.POSTCOPY))
    fitted = calibrate("rig", table, observed).parameters
    assert fitted["compress_mib_s"] == pytest.approx(25.0, rel=0.3)
    # at the prior the 64 MiB/s cap is the limit; at 25 MiB/s of pages (16.5 on the wire) the CPU is
    compress, slow = InputTable.from_rows([(MigrationInputs(200.0, 0.0, 1250.0, cap, 300.0), Technique.PRECOPY_COMPRESS)
                                           for cap in (8.0, 64.0)]), {**PRIOR, **fitted}
    prior_time, fitted_time = physics(compress, PRIOR).total_time_ms, physics(compress, slow).total_time_ms
    assert fitted_time[0] == pytest.approx(prior_time[0], rel=0.05)  # link-bound at 8: unchanged
    assert fitted_time[1] > 3 * prior_time[1]


def test_a_guest_that_dirties_less_while_migrating_is_learnt() -> None:
    table, observed = host(80, {"dirty_scale": 0.5}, (Technique.PRECOPY, Technique.PRECOPY_XBZRLE))
    assert calibrate("rig", table, observed).parameters["dirty_scale"] == pytest.approx(0.5, rel=0.3)


@pytest.mark.parametrize("earlier", EARLIER_PARAMETERS)
def test_a_profile_stored_before_the_last_parameters_is_read_with_them_at_their_priors(
        tmp_path: Path, earlier: tuple[str, ...]) -> None:
    store = ProfileStore(tmp_path)
    saved = store.save(calibrate("old", *host(10, {}, (Technique.PRECOPY,))), "test", {})
    directory = tmp_path / "old" / saved.version
    body = json.loads((directory / "parameters.json").read_text())
    body["parameters"] = {p: body["parameters"][p] for p in earlier}
    del body["base"], body["prior"]  # not written before profiles could be calibrated like another
    (directory / "parameters.json").write_text(json.dumps(body))
    card = json.loads((directory / "card.json").read_text())
    card["schema_hash"] = schema_hash(earlier)
    (directory / "card.json").write_text(json.dumps(card))

    read = ProfileStore(tmp_path).get("old")
    assert read is not None and read.version == saved.version
    assert read.base == "" and dict(read.prior) == dict(PRIOR)
    for name in PRIOR:
        expected = saved.parameters[name] if name in earlier else PRIOR[name]
        assert read.parameters[name] == expected, name


def test_a_stop_faster_than_the_cap_is_learnt_whatever_the_cap() -> None:
    """QEMU lifts the cap for the stop: a host whose last pages go at 400 MiB/s stops as fast at a cap of 8 as at
    64, which one scale of the physics' stop (at the capped bandwidth) cannot fit."""
    truth = {"stop_mib_s": 400.0, "stop_ms": 15.0}
    table, observed = host(60, truth, (Technique.PRECOPY, Technique.PRECOPY_AUTOCONVERGE))
    fitted = {**PRIOR, **calibrate("rig", table, observed).parameters}
    assert fitted["stop_mib_s"] > 2 * 64  # faster than any cap: the scale and fixed stop trade with it a little
    error = np.abs(physics(table, fitted).downtime_ms / observed.downtime_ms - 1)
    without = {**fitted, "stop_mib_s": 0.0, "downtime_scale": PRIOR["downtime_scale"]}
    assert np.median(error) < 0.1 < np.median(np.abs(physics(table, without).downtime_ms / observed.downtime_ms - 1))


def test_the_docs_count_the_parameters_a_calibration_fits() -> None:
    page = (Path(__file__).resolve().parents[3] / "docs" / "learning.md").read_text(encoding="utf-8")
    number = {7: "seven", 8: "eight", 9: "nine", 10: "ten"}[len(PARAMETERS)]
    assert f"`advisor profiles calibrate --name NAME --input FILE.csv` fits {number} parameters" in page
