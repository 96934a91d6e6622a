"""A migration's share of its links: the one rule of the plan's schedule and of the executor's queue."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from advisor.execution.executor import share_of_links
from advisor.planning.engine import Concurrency
from advisor.planning.engine.schedule import shared_bandwidths
from advisor.planning.links import link_share


@pytest.mark.parametrize(("source", "target", "out_of_source", "into_target", "cap", "share"), [
    (100.0, 100.0, 1, 1, math.inf, 100.0),  # alone on equal links: the whole link
    (100.0, 100.0, 2, 1, math.inf, 50.0),  # one more out of its source
    (100.0, 100.0, 1, 2, math.inf, 50.0),  # one more into its target
    (100.0, 100.0, 2, 2, math.inf, 50.0),  # one more on each side: each link halved, not quartered
    (100.0, 100.0, 3, 2, math.inf, 100 / 3),  # the busier side bounds it
    (100.0, 40.0, 1, 1, math.inf, 40.0),  # different links, alone: the slower one
    (100.0, 40.0, 2, 1, math.inf, 40.0),  # the fast source halved is still above the slow target
    (100.0, 40.0, 3, 1, math.inf, 100 / 3),  # ... until its share falls below it
    (100.0, 40.0, 1, 2, math.inf, 20.0),  # the slow target halved
    (40.0, 100.0, 2, 2, math.inf, 20.0),  # min(S/a, T/b), not min(S, T) / max(a, b) ...
    (100.0, 30.0, 3, 1, math.inf, 30.0),  # ... which would give 10 here
    (100.0, 100.0, 1, 1, 60.0, 60.0),  # a bandwidth setting below the link caps a migration alone
    (100.0, 100.0, 2, 1, 60.0, 50.0),  # and is no longer what bounds it once the link is shared
    (100.0, 100.0, 2, 1, 30.0, 30.0),  # a setting below the share: the setting, not half of it
], ids=["alone", "source 2", "target 2", "both 2", "source 3", "slow target", "fast source halved",
        "fast source thirded", "slow target halved", "min of shares", "not min over max", "setting alone",
        "setting above share", "setting below share"])
def test_link_share(source: float, target: float, out_of_source: int, into_target: int, cap: float,
                    share: float) -> None:
    assert link_share(source, target, out_of_source, into_target, cap) == pytest.approx(share)


def test_arrays_give_the_share_of_each_row() -> None:
    rng = np.random.default_rng(7)
    source, target = rng.uniform(10, 200, 50), rng.uniform(10, 200, 50)
    out, into, cap = rng.integers(1, 5, 50), rng.integers(1, 5, 50), rng.uniform(10, 300, 50)
    got = link_share(source, target, out.astype(np.float64), into.astype(np.float64), cap)
    assert got.tolist() == pytest.approx([link_share(float(s), float(t), int(a), int(b), float(c))
                                          for s, t, a, b, c in zip(source, target, out, into, cap, strict=True)])


@pytest.mark.parametrize(("args", "message"), [
    ((100.0, 100.0, 0, 1), "at least with itself"),
    ((100.0, 100.0, 1, 0), "at least with itself"),
    ((0.0, 100.0, 1, 1), "source link must be above 0"),
    ((100.0, -5.0, 1, 1), "target link must be above 0"),
    ((100.0, 100.0, 1, 1, 0.0), "cap must be above 0"),
])
def test_bad_input_is_refused(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        link_share(*args)  # type: ignore[call-overload]


@pytest.mark.parametrize(("source", "target"), [(100.0, 100.0), (100.0, 40.0), (40.0, 100.0), (125.0, 30.0)])
def test_the_schedule_and_the_executor_give_a_move_the_same_share(source: float, target: float) -> None:
    """The plan prices each sharing case at what the executor gives a migration starting in that case."""
    limits = Concurrency(3, 3, 9)
    planned = shared_bandwidths(np.array([source]), np.array([target]), limits)[0]
    links = {"s": source, "t": target}.get
    for a, b in itertools.product(range(1, 4), range(1, 4)):
        running = [("s", f"other{k}") for k in range(a - 1)] + [(f"other{k}", "t") for k in range(b - 1)]
        # the executor caps a plan's move at the pair's link, min(S, T), as the plan's parameters carry it
        given = share_of_links(min(source, target), "s", "t", running, links)
        assert given == pytest.approx(planned[a - 1, b - 1]), (a, b)
