"""The cost model's card and docs page: every figure of the evaluation, as tables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from advisor.ml.cost_features import FEATURE_NAMES, RHO_BANDS, TARGETS, TECHNIQUES

# The aims of issue 10, on held-out lab migrations.
AIM_TIME_MAPE = 0.15
AIM_DOWNTIME_MEDIAN_APE = 0.25
AIM_RECALL = 0.90
AIM_FALSE_ALARMS = 0.10


def _pct(x: object) -> str:
    return "-" if not isinstance(x, int | float) or math.isnan(float(x)) else f"{100 * float(x):.1f}%"


def _cell(s: Mapping[str, Any], key: str) -> str:
    return _pct(s.get(key)) if s.get("n") else "-"


def snu_table(metrics: Mapping[str, Any]) -> list[str]:
    lines = []
    for target in TARGETS:
        lines += [f"#### SNU data, {target} (held-out workloads)", "",
                  "| technique | n | learned MAPE | med APE | coverage | SNU-only MAPE | log-linear MAPE "
                  "| analytic MAPE |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for t in TECHNIQUES:
            s = {m: metrics["snu"][m][str(t)][target] for m in metrics["snu"]}
            lines.append(f"| {t} | {s['learned'].get('n', 0)} | {_cell(s['learned'], 'mape')} | "
                         f"{_cell(s['learned'], 'median_ape')} | {_cell(s['learned'], 'coverage')} | "
                         f"{_cell(s['snu_only'], 'mape')} | {_cell(s['loglinear'], 'mape')} | "
                         f"{_cell(s['analytic'], 'mape')} |")
        lines.append("")
    return lines


def lab_table(metrics: Mapping[str, Any]) -> list[str]:
    lines = []
    for variant, by_method in metrics.get("lab", {}).items():
        lines += [f"#### Lab, held-out configurations, inputs: {variant}", "",
                  "| technique | completed | time MAPE retrained | SNU-only | analytic | downtime med APE retrained "
                  "| SNU-only | analytic | time coverage | data MAPE retrained | SNU-only |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for t in TECHNIQUES:
            s = {m: by_method[m][str(t)] for m in by_method}
            time_ = {m: s[m]["total_time_ms"] for m in s}
            down = {m: s[m]["downtime_ms"] for m in s}
            data = {m: s[m]["transferred_mib"] for m in s}
            lines.append(
                f"| {t} | {time_['learned'].get('n', 0)} | {_cell(time_['learned'], 'mape')} "
                f"| {_cell(time_['snu_only'], 'mape')} | {_cell(time_['analytic'], 'mape')} "
                f"| {_cell(down['learned'], 'median_ape')} | {_cell(down['snu_only'], 'median_ape')} "
                f"| {_cell(down['analytic'], 'median_ape')} | {_cell(time_['learned'], 'coverage')} "
                f"| {_cell(data['learned'], 'mape')} | {_cell(data['snu_only'], 'mape')} |")
        worst = metrics.get("worst", {}).get(variant, {})
        if worst:
            lines.append("")
            lines.append("Worst configuration (time MAPE): " + "; ".join(
                f"{m}: {w['group']} ({w['n']} runs) {_pct(w['mape'])}" for m, w in worst.items() if w.get("group")))
        lines.append("")
    return lines


def convergence_lines(metrics: Mapping[str, Any]) -> list[str]:
    lines = []
    names = {"learned": "retrained (probability <= 0.5, physics guard)", "snu_only": "SNU-only (analytic OR learned "
             "downtime fits)", "analytic": "analytic model alone", "guard": "physics guard alone"}
    for variant, by_method in metrics.get("convergence", {}).items():
        lines += [f"#### Non-convergence foreseen, lab pre-copy variants, inputs: {variant}", "",
                  "| method | non-converging | foreseen | recall | converging | false alarms | precision |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for method, s in by_method.items():
            a = s["all"]
            lines.append(f"| {names.get(method, method)} | {a['non_converging']} | {a['foreseen']} | "
                         f"{_pct(a['recall'])} | {a['converging']} | {_pct(a['false_alarm_rate'])} | "
                         f"{_pct(a['precision'])} |")
        lines.append("")
    return lines


def coverage_lines(metrics: Mapping[str, Any]) -> list[str]:
    lines = ["#### Interval coverage per rho band (nominal 80%, held-out configurations)", "",
             "| source | target | " + " | ".join(b for b, _ in RHO_BANDS) + " |",
             "| --- | --- |" + " ---: |" * len(RHO_BANDS)]
    for source, by_target in metrics.get("coverage", {}).items():
        for target in TARGETS:
            cells = [f"{_pct(by_target[target][b]['coverage'])} (n {by_target[target][b]['n']})" for b, _ in RHO_BANDS]
            lines.append(f"| {source} | {target} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def aims(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    lab = metrics.get("lab", {})
    for variant in ("full", "no windows"):
        if variant not in lab:
            continue
        for t in TECHNIQUES:
            s = lab[variant]["learned"][str(t)]
            if s["total_time_ms"].get("n"):
                rows.append({"aim": f"time MAPE <= {AIM_TIME_MAPE:.0%}", "inputs": variant, "technique": str(t),
                             "value": s["total_time_ms"]["mape"], "met": s["total_time_ms"]["mape"] <= AIM_TIME_MAPE})
                rows.append({"aim": f"downtime median APE <= {AIM_DOWNTIME_MEDIAN_APE:.0%}", "inputs": variant,
                             "technique": str(t), "value": s["downtime_ms"]["median_ape"],
                             "met": s["downtime_ms"]["median_ape"] <= AIM_DOWNTIME_MEDIAN_APE})
        conv = metrics["convergence"][variant]["learned"]["all"]
        rows.append({"aim": f"non-convergence recall >= {AIM_RECALL:.0%}", "inputs": variant, "technique": "pre-copy",
                     "value": conv["recall"], "met": conv["recall"] >= AIM_RECALL})
        rows.append({"aim": f"false alarms <= {AIM_FALSE_ALARMS:.0%}", "inputs": variant, "technique": "pre-copy",
                     "value": conv["false_alarm_rate"], "met": conv["false_alarm_rate"] <= AIM_FALSE_ALARMS})
    return rows


def render_tables(metrics: Mapping[str, Any]) -> str:
    lines = [*lab_table(metrics), *convergence_lines(metrics), *coverage_lines(metrics), *snu_table(metrics)]
    lines += ["#### Aims (issue 10, held-out lab configurations)", "", "| aim | inputs | technique | figure | met |",
              "| --- | --- | --- | ---: | --- |"]
    lines += [f"| {a['aim']} | {a['inputs']} | {a['technique']} | {_pct(a['value'])} | "
              f"{'yes' if a['met'] else '**no**'} |" for a in aims(metrics)]
    return "\n".join([*lines, ""])


def _postcopy_line(card: Mapping[str, Any]) -> str:
    rows = card["data"].get("lab_postcopy")
    if not rows:
        return ""
    return (f"\n  Lab post-copy as the advisor plans it (switch at once): {rows['switched at once']} kept; planned "
            f"later, {rows['never switched']} completed before the switch and {rows['switched later']} switched: "
            "left out.")


def render_card(card: Mapping[str, Any], command: str) -> str:
    sources = card["data"]["sources"]
    return f"""# Model card: {card['model']} {card['version']}

Predicts a live migration's total time (ms), downtime (ms) and data transferred (MiB) for each technique
({', '.join(str(t) for t in TECHNIQUES)}), each with a p10-p90 interval, and the probability that it finishes
within its deadline and allowed downtime.

- Produced by: `{command}`
- Data: {', '.join(f"{k}: `{v['file']}` (sha256 `{str(v['sha256'])[:16]}...`)" for k, v in sources.items())};
  rows {card['data']['rows']}, {card['data']['groups']} configurations.{_postcopy_line(card)}
- Models: per target a base on the SNU profile and a correction per other profile
  ({', '.join(sorted({p for t in card.get('targets', {}).values() for p in t.get('corrections', {})})) or 'none'}).
- Feature schema hash: `{card['schema_hash']}` (advisor/ml/cost_features.py; a mismatching artifact is refused).
- Seed {card['seed']}; libraries: {', '.join(f'{k} {v}' for k, v in card['libraries'].items())}.
- Promotion: {card['promotion']['reason']}

Features: {', '.join(FEATURE_NAMES)}. Intervals: {card['intervals']['kind']}. Convergence: a monotone LightGBM
classifier ({card['convergence']['num_trees']} trees) on the lab's pre-copy migrations, calibrated by isotonic
regression on held-out configurations; the physics guard (advisor/ml/convergence.py) sets it to 0 where pre-copy
cannot converge.

## Evaluation

{card['evaluation']}.

{render_tables(card['metrics'])}
{gate_table(card['promotion'])}"""


def gate_table(promotion: Mapping[str, Any]) -> str:
    """What the promotion gate (training/gate.py) compared the candidate with and why, and every comparison, one
    line each."""
    gate = promotion.get("gate")
    if not gate:
        return ""
    why = f" {gate['baseline_why']}." if gate["baseline_why"] else ""
    if not gate["compared"]:
        return f"## Promotion gate: nothing compared\n\nNo comparison: {gate['baseline']}.{why}\n"
    lines = [f"## Promotion gate: candidate vs {gate['baseline']}", "",
             f"Baseline: {gate['baseline']}, what serving would use were the candidate not promoted.{why}", "",
             f"On the locked test part ({gate['locked_migrations']} migrations in {gate['locked_groups']} groups); "
             f"paired bootstrap of the groups, {gate['resamples']} resamples, seed {gate['seed']}. \"worse by\": "
             "how much worse the candidate is, in percentage points (for coverage, its distance to 80%; for recall, "
             f"recall lost), with its {2 * gate['confidence'] - 1:.0%} interval (the {1 - gate['confidence']:.0%} to "
             f"{gate['confidence']:.0%} quantiles of the resamples); refused when the interval's lower end exceeds "
             "the margin.", "",
             "| scope | technique | figure | migrations | baseline | candidate | worse by | interval | margin "
             "| verdict |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for c in gate["comparisons"]:
        lo, hi = c["interval"]
        lines.append(f"| {c['scope']} | {c['technique']} | {c['figure']} | {c['migrations']} | {_pct(c['baseline'])} "
                     f"| {_pct(c['candidate'])} | {_pct(c['worse_by'])} | {_pct(lo)} .. {_pct(hi)} "
                     f"| {_pct(c['margin'])} | {c['verdict']} |")
    return "\n".join(lines) + "\n"


def docs_page(card: Mapping[str, Any], command: str) -> str:
    return f"""# The learned cost model

Generated by `{command}` (do not edit by hand; rerun the command). The card of this version is
`models/cost/{card['version']}/card.md`; its JSON twin holds every figure below. How the lab data was measured:
[docs/lab-data.md](lab-data.md).

{render_card(card, command).split(chr(10), 1)[1]}
"""
