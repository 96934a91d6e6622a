"""Host profiles: fitting the physics' parameters, shrinking toward the prior, intervals, the online update, the
store (immutable versions) and serving calibrated and uncalibrated profiles."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from advisor.domain.migration import MigrationResult
from advisor.domain.model import Interval, MigrationInputs, ModelRef, Technique
from advisor.features.inputs import InputTable
from advisor.ml.convergence import CONVERGE_CONFIDENCE
from advisor.ml.cost_features import profile_codes
from advisor.ml.predictor import AnalyticPredictor
from advisor.ml.profile_serving import ProfileServingPredictor, profile_costs, within_deadline_probability
from advisor.ml.profile_store import OnlineProfiles, ProfileStore
from advisor.ml.profiles import (
    PARAMETERS,
    PRIOR,
    UNCALIBRATED_OFFSETS,
    Observed,
    calibrate,
    like_profile,
    physics,
    unfitted,
    updated,
)
from advisor.ml.registry import ArtifactError

# a host like the lab: the stop mostly a fixed cost (QEMU lifts the cap for the last pages)
TRUE = {"throughput": 0.6, "round_overhead_ms": 200.0, "downtime_scale": 0.5, "sent_memory_factor": 2.0,
        "stop_ms": 30.0, "compress_mib_s": 200.0, "dirty_scale": 1.0, "stop_mib_s": 0.0, "contention": 0.0}
TECHNIQUES = (Technique.PRECOPY, Technique.PRECOPY_XBZRLE, Technique.POSTCOPY, Technique.PRECOPY_AUTOCONVERGE)


def rig(n: int, seed: int = 1, profile: str = "rig", techniques: tuple[Technique, ...] = TECHNIQUES,
        truth: dict[str, float] = TRUE, loaded: bool = False) -> tuple[InputTable, Observed]:
    """n migrations of a host that follows the physics with `truth`'s parameters, give or take 5%; `loaded`: each
    with its hosts' load measured, 0.2-4 runnable threads per CPU."""
    rng = np.random.default_rng(seed)
    rows = [(MigrationInputs(float(rng.uniform(32, 128)), float(rng.uniform(0, 8)), 1250.0,
                             float(rng.choice([16, 32, 64])), 300.0, memory_configured_mib=256.0,
                             working_set_mib=8.0, deadline_ms=90_000, host_profile=profile,
                             load_per_cpu=float(rng.uniform(0.2, 4.0)) if loaded else None),
             techniques[k % len(techniques)]) for k in range(n)]
    table = InputTable.from_rows(rows)
    a = physics(table, truth)
    noise = rng.lognormal(0.0, 0.05, size=(3, n))
    return table, Observed(a.total_time_ms * noise[0], a.downtime_ms * noise[1], a.transferred_mib * noise[2],
                           np.ones(n, dtype=np.bool_))


def test_many_migrations_recover_the_parameters() -> None:
    profile = calibrate("rig", *rig(80))
    assert profile.migrations == 80
    # a slower link and a per-round overhead both lengthen a pre-copy: on these rounds they trade a little
    assert profile.parameters["throughput"] == pytest.approx(0.6, rel=0.2)
    assert profile.parameters["sent_memory_factor"] == pytest.approx(2.0, rel=0.15)
    assert profile.parameters["downtime_scale"] == pytest.approx(0.5, rel=0.35)
    assert profile.parameters["stop_ms"] == pytest.approx(30.0, abs=12.0)


def test_a_busy_hosts_slowdown_is_learnt_from_its_load_and_an_unmeasured_load_slows_nothing() -> None:
    busy = {**TRUE, "contention": 0.4}
    profile = calibrate("rig", *rig(80, truth=busy, loaded=True))
    assert profile.parameters["contention"] == pytest.approx(0.4, abs=0.12)
    table, observed = rig(40, seed=3, truth=busy, loaded=True)
    fitted = physics(table, profile.parameters).total_time_ms
    ignoring = physics(table, {**profile.parameters, "contention": 0.0}).total_time_ms
    error = np.mean(np.abs(fitted / observed.total_time_ms - 1))  # what the fit leaves unloaded too (throughput
    assert error < 0.2 and np.mean(np.abs(ignoring / observed.total_time_ms - 1)) > 2 * error  # trades overhead)
    # the same migrations with no load measured: predicted as on an idle host, not as on a busy one
    unmeasured = replace(table, load_per_cpu=np.full(len(table), np.nan))
    assert np.allclose(physics(unmeasured, profile.parameters).total_time_ms, ignoring)


def test_a_profile_that_learnt_contention_serves_a_busy_host_slower_and_says_why() -> None:
    profile = replace(calibrate("rig", *rig(80, truth={**TRUE, "contention": 0.4}, loaded=True)), version="1.0.0")
    quiet = MigrationInputs(100.0, 2.0, 1250.0, 32.0, 300.0, memory_configured_mib=256.0, host_profile="rig")
    busy, idle = replace(quiet, load_per_cpu=3.0), replace(quiet, load_per_cpu=0.8)
    unknown, loaded, calm = (profile_costs([(i, Technique.POSTCOPY)], "rig", profile)[0] for i in (quiet, busy, idle))
    assert loaded.total_time_ms.median > 1.5 * unknown.total_time_ms.median
    assert calm.total_time_ms.median == pytest.approx(unknown.total_time_ms.median)  # a core each: no slower
    assert any("3.0 runnable threads per CPU" in n for n in loaded.notes)
    assert any("load not measured" in n for n in unknown.notes)


def test_what_qemu_holds_resident_is_sent_as_read_and_memory_in_use_is_scaled() -> None:
    table, _ = rig(4, techniques=(Technique.POSTCOPY,))
    resident = np.array([np.nan, 150.0, 150.0, np.nan])
    read = replace(table, resident_memory_mib=resident)
    sent = physics(read, TRUE).transferred_mib  # post-copy: one pass over the first pass's pages
    scaled = physics(table, TRUE).transferred_mib
    assert sent[0] == pytest.approx(scaled[0]) and sent[3] == pytest.approx(scaled[3])  # not measured: x2.0
    in_use = table.memory_mib[1:3]
    expected = np.clip(60.0, in_use, 2 * in_use)  # less QEMU's 90 MiB, within 1-2x the memory in use; unscaled
    assert sent[1:3] / scaled[1:3] == pytest.approx(expected / (2.0 * table.memory_mib[1:3]), rel=0.02)


def test_few_migrations_stay_near_the_prior() -> None:
    few, many = calibrate("rig", *rig(2)), calibrate("rig", *rig(80))
    for name in ("throughput", "sent_memory_factor"):
        assert abs(np.log(few.parameters[name] / PRIOR[name])) < abs(np.log(many.parameters[name] / PRIOR[name]))


def test_intervals_narrow_from_the_uncalibrated_ones_as_migrations_come() -> None:
    few, many = calibrate("rig", *rig(8)), calibrate("rig", *rig(80))
    uncalibrated = UNCALIBRATED_OFFSETS["total_time_ms"]
    few_band, many_band = (p.interval(Technique.PRECOPY, "total_time_ms") for p in (few, many))
    assert many_band[2] - many_band[0] < few_band[2] - few_band[0] < uncalibrated[1] - uncalibrated[0]
    assert many_band[0] <= many_band[1] <= many_band[2]


def test_a_profile_calibrated_like_a_known_one_stays_near_that_one_while_it_has_few_migrations() -> None:
    known = calibrate("known", *rig(80))
    few = calibrate("rig", *rig(2, seed=5), like=known)
    alone = calibrate("rig", *rig(2, seed=5))
    assert few.base == "known" and dict(few.prior) == dict(known.parameters) and alone.base == ""
    for name in ("throughput", "sent_memory_factor"):
        # near what the known host says, where the same two migrations alone stay near the physics' defaults
        assert abs(np.log(few.parameters[name] / TRUE[name])) < abs(np.log(alone.parameters[name] / TRUE[name]))
    # an online update keeps shrinking toward the known profile, not toward the defaults
    after = updated(few, *rig(1, seed=9))
    assert after.base == "known" and dict(after.prior) == dict(known.parameters)


@pytest.mark.parametrize(("techniques", "completed", "kept"), [
    (TECHNIQUES, True, ("compress_mib_s", "contention")),  # no compressed migration, no load measured
    ((Technique.POSTCOPY,), True, ("round_overhead_ms", "compress_mib_s", "dirty_scale", "contention")),  # no round
    (TECHNIQUES, False, PARAMETERS),  # aborted migrations: nothing measured to fit
])
def test_what_no_migration_says_anything_of_is_kept_at_the_prior(techniques: tuple[Technique, ...], completed: bool,
                                                                 kept: tuple[str, ...]) -> None:
    table, observed = rig(12, techniques=techniques)
    observed = replace(observed, completed=observed.completed & completed)
    profile = calibrate("rig", table, observed)
    assert unfitted(table, observed, profile.parameters) == kept
    assert {p: profile.parameters[p] for p in kept} == {p: PRIOR[p] for p in kept}


def test_an_online_update_moves_the_profile_a_step_and_counts_the_migration() -> None:
    profile = calibrate("rig", *rig(3))
    table, observed = rig(1, seed=9)
    after = updated(profile, table, observed)
    assert after.migrations == 4 and after.version == ""
    for name in ("throughput", "sent_memory_factor"):
        before, now = profile.parameters[name], after.parameters[name]
        assert min(before, TRUE[name]) * 0.8 <= now <= max(before, TRUE[name]) * 1.2
    assert len(after.residuals[str(table.techniques[0])]["total_time_ms"]) == \
        len(profile.residuals[str(table.techniques[0])]["total_time_ms"]) + 1


def test_the_store_writes_immutable_versions_and_reads_the_active_one(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    assert store.get("rig") is None
    first = store.save(calibrate("rig", *rig(10)), "test", {})
    second = store.save(calibrate("rig", *rig(20)), "test", {})
    assert (first.version, second.version) == ("1.0.0", "1.1.0")
    read = store.get("rig")
    assert read is not None and read.version == "1.1.0" and read.migrations == 20
    assert read.offsets == second.offsets and store.names() == ["rig"]
    with pytest.raises(ArtifactError, match="immutable"):
        store.save(calibrate("rig", *rig(5)), "test", {}, version="1.0.0")
    for version in ("abc", "9.9.9.9", "01.0.0"):  # 01.0.0 would be 1.0.0 again, and next_version skips the others
        with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
            store.save(calibrate("rig", *rig(5)), "test", {}, version=version)
    like = store.save(calibrate("rig3", *rig(5, seed=4), like=read), "test", {})
    stored = ProfileStore(tmp_path).get("rig3")
    assert stored is not None and (stored.base, dict(stored.prior)) == ("rig", dict(read.parameters))
    assert stored.parameters == like.parameters and dict(store.get("rig").prior) == dict(PRIOR)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="profile name"):
        store.save(calibrate("../x", *rig(5)), "test", {})


def _not_json(directory: Path) -> None:
    (directory / "1.0.0" / "parameters.json").write_text("{bad")


def _no_card(directory: Path) -> None:
    (directory / "1.0.0" / "card.json").unlink()


def _active_names_none(directory: Path) -> None:
    (directory / "ACTIVE").write_text("2.0.0\n")


@pytest.mark.parametrize(("corrupt", "why"), [
    (_not_json, "corrupt artifact .*JSONDecodeError"),
    (_no_card, "cannot read .*card.json"),
    (_active_names_none, "cannot read .*2.0.0/card.json"),
])
def test_a_profile_whose_active_version_is_unreadable_says_why_and_is_served_as_uncalibrated(
        tmp_path: Path, corrupt: Callable[[Path], None], why: str) -> None:
    store = ProfileStore(tmp_path)
    store.save(calibrate("rig", *rig(12)), "test", {})
    assert store.get("rig") is not None  # read once: what it caches must not hide the damage
    corrupt(tmp_path / "rig")
    for _ in range(2):  # and again, from what it caches
        with pytest.raises(ArtifactError, match=why):
            store.get("rig")
    assert store.get("never") is None  # never calibrated is not unreadable
    cost = ProfileServingPredictor(Inner(), store.get).predict(
        MigrationInputs(100, 2, 1250, 32, 300, host_profile="rig"), Technique.PRECOPY)
    assert cost.notes[0].startswith("profile rig is calibrated but its active version is unreadable (")
    assert cost.model.version == "uncalibrated" and re.search(why, cost.model.fallback_reason)
    # an online update does not replace it with a fit of one migration; a calibration does, and is read
    table, observed = rig(1, seed=9)
    OnlineProfiles(store).learn(table.rows()[0][0], table.techniques[0], MigrationResult(
        True, total_time_ms=float(observed.total_time_ms[0]), downtime_ms=float(observed.downtime_ms[0]),
        transferred_mib=float(observed.transferred_mib[0])))
    assert not (tmp_path / "rig" / "1.1.0").exists()
    store.save(calibrate("rig", *rig(12)), "test", {}, version="3.0.0")
    assert store.get("rig").version == "3.0.0"  # type: ignore[union-attr]


@pytest.mark.parametrize(("migrations", "like", "note"), [
    (12, "", "profile rig calibrated from 12 migrations (version 1.0.0)"),
    (1, "", "profile rig calibrated from 1 migration (version 1.0.0)"),
    (1, "known", "profile rig calibrated from 1 migration, like known (version 1.0.0)"),
    (0, "known", "profile rig has none of its own migrations yet: known's parameters, intervals of a profile left "
                 "out (version 1.0.0)"),
])
def test_the_note_says_what_a_profile_was_calibrated_from(migrations: int, like: str, note: str) -> None:
    known = calibrate("known", *rig(12))
    profile = (like_profile("rig", known) if migrations == 0 else
               calibrate("rig", *rig(migrations), like=known if like else None))
    inputs = MigrationInputs(100, 2, 1250, 32, 300, host_profile="rig")
    cost = profile_costs([(inputs, Technique.PRECOPY)], "rig", replace(profile, version="1.0.0"))[0]
    assert cost.notes[0] == note


class Inner:
    """A learned model stand-in that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._analytic = AnalyticPredictor()

    @property
    def model(self) -> ModelRef:
        return self._analytic.model

    def predict(self, inputs: MigrationInputs, technique: Technique):  # type: ignore[no-untyped-def]
        return self.predict_many([(inputs, technique)])[0]

    def predict_many(self, rows):  # type: ignore[no-untyped-def]
        self.asked += [i.host_profile for i, _ in rows]
        return self._analytic.predict_many(rows)


def test_serving_routes_known_calibrated_and_uncalibrated_profiles(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.save(calibrate("rig", *rig(12)), "test", {})
    inner = Inner()
    served = ProfileServingPredictor(inner, store.get)
    inputs = MigrationInputs(100, 2, 1250, 32, 300, deadline_ms=90_000)
    costs = served.predict_many([(inputs, Technique.PRECOPY),
                                 (MigrationInputs(100, 2, 1250, 32, 300, host_profile="lab"), Technique.PRECOPY),
                                 (MigrationInputs(100, 2, 1250, 32, 300, host_profile="rig"), Technique.PRECOPY),
                                 (MigrationInputs(100, 2, 1250, 32, 300, host_profile="new"), Technique.POSTCOPY)])
    assert inner.asked == ["", "lab"]
    assert costs[2].notes[0] == "profile rig calibrated from 12 migrations (version 1.0.0)"
    assert costs[2].model.version == "rig/1.0.0"
    assert costs[3].notes[0].startswith("profile new is not calibrated")
    low, _, high = (costs[3].total_time_ms.low, costs[3].total_time_ms.median, costs[3].total_time_ms.high)
    assert high / low == pytest.approx(np.exp(UNCALIBRATED_OFFSETS["total_time_ms"][1]
                                              - UNCALIBRATED_OFFSETS["total_time_ms"][0]))
    arrays = served.predict_arrays([(MigrationInputs(100, 2, 1250, 32, 300, host_profile="new"), Technique.PRECOPY)])
    assert arrays.total_time_ms.shape == (1, 3)


def test_a_refused_learned_model_leaves_every_profile_to_the_physics_with_the_reason(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.save(calibrate("lab", *rig(12, profile="lab")), "test", {})
    served = ProfileServingPredictor(AnalyticPredictor(fallback_reason="corrupt artifact"), store.get)
    assert served.model.name == "calibrated-physics" and served.model.fallback_reason == "corrupt artifact"
    # 4096 MiB at 8 MiB/s take 512 s: the bare formulas call it converging, the physics' deadline guard does not
    big = MigrationInputs(4096, 0, 1250, 8, 300, deadline_ms=10_000)
    unlabelled, lab = served.predict_many([(big, Technique.PRECOPY),
                                           (replace(big, host_profile="lab"), Technique.PRECOPY)])
    assert AnalyticPredictor().predict(big, Technique.PRECOPY).converges
    assert not unlabelled.converges and not lab.converges
    assert unlabelled.notes[0] == ("learned cost model refused (corrupt artifact); profile snu is not calibrated: "
                                   "physics with default parameters, intervals of a profile left out")
    assert unlabelled.model.fallback_reason == "corrupt artifact"
    # a profile calibrated in the store serves its own hosts, and says the learned model was refused
    assert lab.model.version == "lab/1.0.0" and lab.model.fallback_reason == "corrupt artifact"
    assert lab.notes[0].startswith("learned cost model refused (corrupt artifact); profile lab calibrated from 12")
    table = InputTable.from_rows([(big, Technique.PRECOPY)])
    assert not served.predict_table_arrays(table, lambda: [(big, Technique.PRECOPY)]).converges[0]
    assert not served.predict_batch([(big, Technique.PRECOPY)]).cost(0).converges


def test_a_deadline_shorter_than_the_migration_is_no_convergence() -> None:
    rows = [(MigrationInputs(4096, 0, 1250, 8, 300, deadline_ms=10_000, host_profile="new"), Technique.PRECOPY)]
    cost = profile_costs(rows, "new", None)[0]
    # the DEADLINE guard, as the learned model applies it: 4096 MiB at 8 MiB/s take 512 s
    assert not cost.converges and cost.notes[-1] == ("precopy cannot converge within 10 s: one pass over 4096 MiB "
                                                     "at 8.0 MiB/s takes 512 s")


@pytest.mark.parametrize(("deadline_ms", "expected"), [
    (0.0, 1.0),  # no deadline
    (10_000.0, 0.5),  # at the median
    (20_000.0, 0.9),  # at the p90
    (5_000.0, 0.1),  # at the p10
    (40_000.0, 0.99),  # beyond: log-normal through the interval
])
def test_the_probability_of_ending_within_the_deadline(deadline_ms: float, expected: float) -> None:
    time = Interval(5_000.0, 10_000.0, 20_000.0)
    assert within_deadline_probability(time, deadline_ms) == pytest.approx(expected, abs=0.005)


def test_a_median_inside_the_deadline_is_not_enough_to_call_it_converging() -> None:
    # an idle guest whose one pass takes about 30 s at 8 MiB/s: a 40 s deadline holds its median, not its p90
    inputs = MigrationInputs(240, 0, 1250, 8, 300, working_set_mib=0, deadline_ms=40_000, host_profile="new")
    cost = profile_costs([(inputs, Technique.PRECOPY)], "new", None)[0]
    assert cost.total_time_ms.median < 40_000 < cost.total_time_ms.high
    assert cost.converge_probability is not None and 0.5 < cost.converge_probability < CONVERGE_CONFIDENCE
    assert not cost.converges and "p = " in cost.notes[-1]
    relaxed = profile_costs([(replace(inputs, deadline_ms=0), Technique.PRECOPY)], "new", None)[0]
    assert relaxed.converges and relaxed.converge_probability == 1.0


def test_the_guards_decide_an_uncalibrated_profile_as_the_learned_model() -> None:
    # 64 MiB rewritten at 20 MiB/s against 8 MiB/s (a 2.4 MiB budget): KEEPS_UP; a 1 MiB working set fits: FITS
    keeps_up = MigrationInputs(256, 20, 1250, 8, 300, working_set_mib=64, host_profile="new")
    fits = MigrationInputs(256, 0.5, 1250, 8, 300, working_set_mib=1, host_profile="new")
    costs = profile_costs([(keeps_up, Technique.PRECOPY), (fits, Technique.PRECOPY)], "new", None)
    assert not costs[0].converges and "cannot converge" in costs[0].notes[1]
    assert costs[1].converges and "fits" in costs[1].notes[1]


def test_a_blind_dirty_rate_is_said_in_the_notes() -> None:
    blind = MigrationInputs(256, 8, 1250, 8, 300, dirty_rate_known=False, dirty_rate_source="dirty rate unknown: x",
                            host_profile="new")
    cost = profile_costs([(blind, Technique.PRECOPY)], "new", None)[0]
    assert "dirty rate unknown: x" in cost.notes


def test_the_physics_takes_a_reading_at_page_samplings_floor_as_blind() -> None:
    # one sampled page (2 MiB/s) at 1 s, nothing over 4 s, the guest busy: the lab's `stress` runs, which never
    # converged; read as measured, 120 MiB at 8 MiB/s converges within the deadline
    read = MigrationInputs(256, 2.0, 1250, 8, 300, memory_configured_mib=256, working_set_mib=0.0,
                           deadline_ms=90_000, host_profile="new")
    measured, floor = profile_costs([(read, Technique.PRECOPY),
                                     (replace(read, dirty_rate_at_floor=True), Technique.PRECOPY)], "new", None)
    assert measured.converges and not floor.converges
    assert any(n.startswith("dirty rate read 2.0 MiB/s, page sampling's floor") and "(8.0 MiB/s)" in n
               for n in floor.notes)
    table = InputTable.from_rows([(replace(read, dirty_rate_at_floor=True), Technique.PRECOPY)])
    assert physics(table, PRIOR).total_time_ms[0] > physics(replace(table, dirty_at_floor=None), PRIOR).total_time_ms[0]


def test_a_dirty_rate_nothing_measured_is_not_scaled_by_the_hosts_slowdown() -> None:
    """A host whose guests dirty at half the measured rate while migrating (dirty_scale 0.5): a measured 8 MiB/s
    over an 8 MiB/s link converges, but a rate nothing measured is the link's own and still never converges."""
    slow = replace(calibrate("rig", *rig(10)), parameters={**TRUE, "dirty_scale": 0.5, "throughput": 1.0})
    inputs = MigrationInputs(256, 8, 1250, 8, 300, working_set_mib=200.0, deadline_ms=600_000, host_profile="rig")
    measured, unknown = profile_costs([(inputs, Technique.PRECOPY),
                                       (replace(inputs, dirty_rate_known=False), Technique.PRECOPY)], "rig", slow)
    assert measured.converges and not unknown.converges


def test_the_learned_features_refuse_a_profile_they_do_not_know() -> None:
    assert list(profile_codes(["snu", "lab"])) == [0.0, 1.0]
    with pytest.raises(ValueError, match="'cloud'"):
        profile_codes(["snu", "cloud"])
