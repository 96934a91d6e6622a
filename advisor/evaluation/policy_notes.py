"""How the `advisor` policy decides and how its settings came about: the text docs/simulation-advisor.md ends with
(rendered by report.py), kept apart from the code that renders the figures."""

NOTES = """- Each update: the snapshot becomes the engine's arrays (advisor/evaluation/bridge.py): 1 engine core = 1,000
  MIPS; a VM's demand is the larger of its utilisation now and its mean over the last 3 updates, and its spread
  the standard deviation of its last 6 samples (both from samples already seen, never ahead); VMs of more MIPS per
  PE than a host's PE get a VM-host rule against it (hard when the demand needs more). Costs come from the learned
  model (pre-copy only, which is what CloudSim models; dirty rate 40 MiB/s x utilisation), with no downtime limit
  (`max_downtime_ms` 0: CloudSim models no downtime).
- `balance` relieves hotspots by SLA time (advisor/planning/engine/overload.py): a host whose forecast exceeds
  `hot` = 100% of capacity is taken as normal around its forecast with its VMs' variance (at least 3% of its
  cores); the probability it exceeds capacity is the share of the next `horizon_s` = 30 min it is expected to spend
  in SLA violation. Its VMs are taken most SLA seconds saved per second of predicted migration first (the source
  carries the VM until the move ends; the target's added expected overload counts against it), and only the first
  k moves are kept, k the one where the SLA time saved most exceeds the migrations' own seconds (a migration is
  SLA time too: CloudSim counts its target in violation while it runs). Targets are running hosts with room
  (packing; an idle host is woken only if none fits). `consolidate` then empties hosts below `underload` = 75%
  whole, when every VM fits under `headroom` = 95% elsewhere, best power saved per migration second first, at
  least 0.5 W saved per move, a host's VMs largest share first (CPU or memory where enforced: Bitbrains), each to
  the fullest host that takes it. Anti-churn: a VM that moved is left alone for 600 s + 5 s per second its
  migration was predicted to take, and does not return to the host it left for twice that; no cap per update.
- How these settings came about (2026-12-06, a few days each, then the whole of both traces): on Bitbrains day 11
  the 300 ms downtime limit of the earlier settings refused about 700 relief moves a day (the learned model
  predicts 336-360 ms of downtime for busy Bitbrains VMs): relief could not keep up, hosts stayed overloaded
  (SLATAH 7.5%, MFPED 2.5%). Without the limit SLATAH fell to 2.9%; ranking relief by SLA time over 2 h brought
  it to 2.5% with 74 relief moves instead of 261 (1 h: 2.3%, 5 min: 28.8%, as a migration of a busy Bitbrains VM
  outlasts a 5-minute horizon). Relieving from 90% of capacity raised SLATAH (day 11: 11.0% against 7.5%): the
  migrations' own SLA time outweighs what they relieve. Energy then rose above MFPED's on Bitbrains (day 0: 47.9
  against 45.2 kWh): at 5 W a move, hosts of 25 VMs at 20% load (109 W) could not be emptied; 2 W a move, a
  5 s-per-second cooldown (the learned model predicts Bitbrains migrations at 3-10x CloudSim's time, so 30 s per
  second pinned VMs for hours) and `underload` 75% brought day 0 to 45.3 kWh and day 5 to 88.8 (MFPED 88.5).
  Targets were then filled to 90% or 95% (`headroom`), each run on every day of both traces; the
  cross-validation below chose 95% on every fold (fewer hosts running: energy at most MFPED's on more days, for
  more SLATAH, still below MFPED's on most days), so it is the default.
- 2026-12-07: most Bitbrains days are memory-bound (the VMs' RAM fills 13-20 of the 200 hosts, their CPU 5-15), and a
  host of 34 small VMs saves about 58 W, 1.7 W a move: 2 W a move kept such hosts running (energy above MFPED's on 10
  days). Relief's moves cause most of PDM (median 77% on Bitbrains, 76-80% on PlanetLab: the last column of the
  predictions' tables; a busy VM leaving an overloaded host loses its share of the overload too while it migrates, for
  minutes): over 30 min instead of 2 h, a long migration saves less of the horizon, and relief keeps fewer of them.
  Together (`horizon_s` 1800, `min_saving_w` 0.5) they meet all four aims on 22 days against 18; among the six
  combinations of horizon_s 1800 or 7200 and min_saving_w 0.5, 1 or 2 they were chosen on 36 of 37 folds, the held-out
  days meeting all four aims on 21, so they are the defaults. The price: more days with SLATAH above MFPED's (8
  against 3, by at most 16%) or more than half its migrations (7 against 4), and a worse worst day (Bitbrains day 21,
  ESV 5.2x against 4.6x). Five settings tried after them (horizon_s 1200 or 2400, 0.25 W a move) are in the cross-
  validation below: 0.25 W is chosen on most folds (all four aims on 23 days) but the held-out days fall to 20, fewer
  than the defaults meet, so the defaults stay. Tried as well on all 37 days, not adopted: relief pricing the moving
  guest's lost CPU against the SLA time saved (1 SLA s per core-second: 18 days; 3 or more: SLATAH above MFPED's on
  19-26 days), consolidation targets chosen by their chance of passing capacity (`consolidation_risk` 0.05:
  PlanetLab's median ESV ratio 0.50, but energy above MFPED's on 23 days), targets spreading CPU for the power curve's
  convexity (13-18 days).
- 2026-12-07, later: Bitbrains energy is memory packing (day 20: memory fills 7.98 hosts, MFPED keeps 8.8 running,
  the advisor 9.4); placed most CPU first, a VM of much memory came last, found no host, and its host stayed.
  Largest share first (`consolidation_dominant`; memory counts only where enforced, so PlanetLab's moves are the
  same, digest for digest): all four aims on 25 of 37 days against 22 (Bitbrains 0, 4, 6, 13 gained, 7 lost), worst
  day (Bitbrains 21) ESV 2.5x against 5.2x; chosen on every fold against the previous defaults, so the default.
  Energy barely moves (above MFPED's on days 1, 2, 17, 20, 21). Not adopted: moving a smaller VM first to make room
  (`consolidation_make_room` 3: 23 days; its moves raise SLATAH), a cap per update (`max_moves_fraction` 0.25, 0.1:
  12, 3; energy up), targets spreading CPU for the power curve (`consolidation_balance` 0.25, 0.5: 17, 19 days).
- 2026-12-07, last: what stands between the defaults and the aims, tried on every day and not adopted. Consolidating
  only calm hosts (`consolidation_calm_samples` 6: a host is emptied only if its VMs of now stayed below `underload`
  at each of their last 6 samples, as VMware's DPM powers a host off on a long window of demand): on PlanetLab the
  median ESV ratio falls to 0.54 (0.49-0.78; SLATAH 0.48-0.76x, PDM 1.00x from 1.35x, migrations 0.26-0.30x), the
  aim of 0.6 met, but energy rises above MFPED's on 6 of 7 days by 0.2-1.7% (a host busy lately keeps running),
  and all four aims hold on 18 of 37 days. Scratch runs of its variants (the peak judged at 85% or 95% instead of
  `underload`, a mean instead of the highest sample, with `underload` 0.8 or 0.25 W a move) met all four on 18-23
  days. Relieving earlier (`hot` 0.9, 0.95): 9 and 12 days. Also in scratch runs: relief's overload probability
  is not calibrated on PlanetLab (20110303, each host's VMs' trace demand at the next update, moves or not: hosts
  given 0.9-1 passed capacity 28% of the time, 0.5-0.7 14%, 0.1-0.3 7%; on Bitbrains day 14, 85%, 47%, 9%), but a
  probit calibration of it fitted on the samples seen so far changed nothing (20110303 ESV 0.90x), and a forecast
  fitted by least squares (the next sample from now, the mean of 3 and the spread) in place of the larger of now
  and the mean left PlanetLab's hosts overloaded (SLATAH 5.9x: consolidation then packs to 95% of an unbiased
  forecast). On Bitbrains day 21, 23 relief moves make 75% of PDM: four 19 GB VMs at 80-90% of 20,800 MIPS, each
  300 s leaving a host at 1.1-1.5x capacity, losing their share of the overload as they go. Pricing that loss at
  the rate ESV implies (the SLA seconds measured so far per core-second lost, 0.5 to 33 across days) brought day 21
  to 0.75x but day 14's SLATAH to 6.5x; at 0.05 and 0.2 of it, 21 and 12 days. Packing new VMs at creation (PABFD
  instead of the creation placement MFPED uses, to save the first update's ~400 moves) took day 17 to 1.26x MFPED's
  migrations. On the days over half MFPED's migrations (2, 7, 12, 16, 17, 19, 21, 24) the cluster's demand jumps for
  one or two updates (day 17: from 5.5 to 16 hosts' worth at 7.7 h), relief wakes hosts and consolidation moves
  100-200 VMs back once it passes; MFPED does the same (day 17: 426 of its 1,007 migrations at the first update,
  286 at 7-8 h), so half its count leaves the advisor about 100 moves after the first update.
- The same in serving: the settings above (`hot`, `horizon_s`, `headroom`, `underload`, `min_saving_w`, the 5 s
  cooldown per second) are defined once, `TUNED` in advisor/planning/engine/forecast.py, as this policy's defaults
  and serving's (README, Settings: `plan_rebalance_hot`, `plan_rebalance_horizon_s`, `plan_max_cpu_after`,
  `plan_cooldown_per_move_s`; serving's consolidation keeps its own `underload` and `min_saving_w`, and places VMs
  largest share first as here: it is `consolidate`'s default, `TUNED.dominant_order`). A
  PlanCluster rebalance forecasts each VM's CPU and spread from its recent samples by the function bridge.py uses
  (3 and 6 samples: a VM pushing every 15 s is judged on its last 90 s, not 30 min), and relieves by SLA time.
  A VM with fewer than 2 samples has no spread, here at the first update as in serving (it was taken as 0
  before): its host is relieved by load and the move's reason says so (PlanetLab 20110303: the same figures).
"""
