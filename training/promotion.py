"""Whether a candidate cost model replaces the active one: only when it is better, and the card says why.

Better means both:
- on the SNU data, per technique, its held-out total-time MAPE and downtime median APE are not worse than the
  active model's card says (within SNU_TOLERANCE, the run-to-run noise of the evaluation): what served well must
  keep serving well;
- on the lab's held-out configurations, its total-time MAPE (mean over techniques) is lower and its recall of
  non-converging migrations at least as high as the reference's: the active model's own lab figures when its card
  has them and they were measured on the same lab data (same sha256), else the same recipe trained on the SNU
  data alone (an active model of an older feature schema cannot
  be run by this code; `docs/cost-model.md` also gives the shipped model's figures measured with its own code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from advisor.ml.cost_features import TECHNIQUES
from advisor.ml.registry import ArtifactError, read_active

SNU_TOLERANCE = 0.005  # absolute, on MAPE and median APE


def _active_card(models_root: Path) -> dict[str, Any] | None:
    try:
        card: dict[str, Any] = json.loads((models_root / read_active(models_root) / "card.json").read_text())
        return card
    except (ArtifactError, OSError, ValueError):
        return None


def _snu_figures(card: dict[str, Any]) -> dict[str, dict[str, float]]:
    """technique -> {time MAPE, downtime median APE} of a card, in this schema's layout or the older one's."""
    metrics = card.get("metrics", {})
    learned = metrics.get("snu", {}).get("learned") or metrics.get("learned", {})
    return {t: {"time": float(v["total_time_ms"]["mape"]), "downtime": float(v["downtime_ms"]["median_ape"])}
            for t, v in learned.items() if "total_time_ms" in v and "mape" in v["total_time_ms"]}


def _lab_figures(metrics: dict[str, Any], method: str) -> tuple[float, float] | None:
    lab = metrics.get("lab", {}).get("full", {}).get(method)
    conv = metrics.get("convergence", {}).get("full", {}).get(method)
    if not lab or not conv:
        return None
    mapes = [lab[str(t)]["total_time_ms"]["mape"] for t in TECHNIQUES if lab[str(t)]["total_time_ms"].get("n")]
    return float(np.mean(mapes)), float(conv["all"]["recall"])


def decide(metrics: dict[str, Any], models_root: Path, *, promote: bool,
           lab_sha256: str | None = None) -> dict[str, Any]:
    active = _active_card(models_root)
    reasons: list[str] = []
    snu_ok = True
    if active is not None:
        before = _snu_figures(active)
        now = _snu_figures({"metrics": metrics})
        for t, was in before.items():
            got = now.get(t)
            if got is None:
                continue
            for what in ("time", "downtime"):
                if got[what] > was[what] + SNU_TOLERANCE:
                    snu_ok = False
                    reasons.append(f"SNU {t} {what} error {got[what]:.1%} is worse than the active "
                                   f"{active.get('version')}'s {was[what]:.1%}")
        if snu_ok:
            reasons.append(f"SNU figures not worse than the active {active.get('version')}'s (per technique, "
                           f"within {SNU_TOLERANCE:.1%})")
    else:
        reasons.append("no active model to compare with")
    candidate = _lab_figures(metrics, "learned")
    reference_name = "the SNU-only model"
    reference = _lab_figures(metrics, "snu_only")
    active_lab = (active or {}).get("data", {}).get("sources", {}).get("lab", {}).get("sha256")
    if active is not None and "lab" in active.get("metrics", {}) and active_lab == lab_sha256:
        reference_name = f"the active {active.get('version')}"
        reference = _lab_figures(active["metrics"], "learned")
    elif active is not None and "lab" in active.get("metrics", {}):
        reasons.append(f"the active {active.get('version')}'s lab figures are from other lab data")
    lab_ok = candidate is not None and (reference is None or (candidate[0] < reference[0]
                                                              and candidate[1] >= reference[1]))
    if candidate is None:
        reasons.append("no lab migrations to evaluate on")
    elif reference is not None:
        reasons.append(f"lab: time MAPE {candidate[0]:.1%} vs {reference[0]:.1%} and non-convergence recall "
                       f"{candidate[1]:.0%} vs {reference[1]:.0%} of {reference_name}: "
                       + ("better" if lab_ok else "not better"))
    better = snu_ok and lab_ok
    promoted = promote and better
    verdict = ("promoted: better than the active model" if promoted
               else "not promoted: " + ("--promote not given" if better else "not better than the active model"))
    return {"promoted": promoted, "better": better, "reason": verdict + " (" + "; ".join(reasons) + ")"}
