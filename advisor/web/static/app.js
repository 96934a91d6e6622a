// The advisor's web page: it reads the JSON endpoints (the API's own JSON: lowerCamelCase, enums by name,
// fields at their default left out) and draws tables and plots, refreshing without reloading. Read only.
// Everything from the server goes into the page as text (textContent), never as HTML.
(function () {
  "use strict";

  const { API, num, counted, state, phase, technique, moveState, moveStateIn, fixed, est, amount, utc, el, td, badge, empty,
          collapse, SessionEnded, getJSON, query, every, stamp } = window.Advisor;
  const { state: cluster, showOnCluster } = window.AdvisorCluster;
  const PAGE = 20;
  const PLOT_PAGE = 500;
  // Redraw a section now (set at start).
  let recsNow = () => {}, decisionsNow = () => {};

  // -- header: models, calibration, session ---------------------------------------------------------------

  const QUANTITY_NAMES = { total_time_ms: "total time", downtime_ms: "downtime", transferred_mib: "data sent" };

  function modelText(m) { return m ? `${m.name || "-"} ${m.version || ""}`.trim() : "-"; }

  async function loadModels() {
    const doc = await getJSON(API + "models");
    document.getElementById("cost-model").textContent = modelText(doc.costModel);
    document.getElementById("forecaster").textContent = modelText(doc.dirtyRateForecaster);
    const fallbacks = [["cost model", doc.costModel], ["dirty-rate forecaster", doc.dirtyRateForecaster]]
      .filter(([, m]) => m && m.fallbackReason)
      .map(([what, m]) => el("p", { class: "warn", text: `${what} fell back to ${modelText(m)}: ${m.fallbackReason}` }));
    document.getElementById("fallbacks").replaceChildren(...fallbacks);
    document.getElementById("calibration-note").textContent =
      "Median |predicted - actual| / actual (APE) over the last executed migrations of each technique, the share " +
      "whose actual value fell inside the predicted interval, and a drift flag (raised once enough migrations show " +
      `an APE above ${fixed(num(doc.driftErrorRatio) * 100, 0)}%: retrain). Interval of the cost model: ` +
      `${(doc.costModel && doc.costModel.intervalKind) || "-"}.`;
    const byTechnique = new Map();
    for (const e of doc.calibration || []) {
      if (!byTechnique.has(e.technique)) byTechnique.set(e.technique, {});
      byTechnique.get(e.technique)[e.quantity] = e;
    }
    const tbody = document.getElementById("calibration-rows");
    if (!byTechnique.size) {
      collapse("calibration", "none yet: no migration has succeeded, nothing measured against its prediction");
      tbody.replaceChildren();
      return;
    }
    collapse("calibration", "");
    tbody.replaceChildren(...[...byTechnique].map(([t, qs]) => el("tr", {},
      td(technique(t)), td(Object.values(qs)[0].model || "-"),
      ...Object.keys(QUANTITY_NAMES).map(q => {
        const e = qs[q];
        if (!e) return td("-");
        return el("td", {}, `APE ${fixed(e.medianApe * 100, 1)}%, ${fixed(e.coverage * 100, 0)}% inside, n ${e.n} `,
                  e.drift ? badge("drift") : null);
      }))));
  }

  async function loadSession() {
    const s = await getJSON(API + "session");
    document.getElementById("who").textContent =
      `${s.role} ${s.via} as ${s.name}` + (s.expireTime ? `, until ${utc(s.expireTime).slice(11, 16)} UTC` : "");
  }

  // -- running migrations ---------------------------------------------------------------------------------

  // `polled`: the hypervisor was read at least once; before that (a queued move) nothing is known, not 0%.
  function outlook(p, polled) {
    if (!p || ["MIGRATION_PHASE_SUCCEEDED", "MIGRATION_PHASE_FAILED", "MIGRATION_PHASE_ABORTED"].includes(p.phase)) {
      return "-";
    }
    const ratio = polled ? `${fixed(num(p.progressRatio) * 100, 0)}%` : "-";
    if (p.converging === false) return `${ratio}, not converging`;
    if (p.etaMs !== undefined) return `${ratio}, ETA ${amount(p.etaMs, 1000, "s")}`;
    return `${ratio}, ETA -`;
  }

  async function loadRunning() {
    const list = await getJSON(query("migrations", { running_only: true, page_size: 50 }));
    const ops = list.operations || [];
    const progress = await Promise.all(ops.map(op =>
      getJSON(query("progress", { operation_id: op.operationId })).catch(e => {
        if (e instanceof SessionEnded) throw e;
        return null;  // it ended meanwhile: the next refresh shows it gone
      })));
    const tbody = document.getElementById("running-rows");
    collapse("running", ops.length ? "" : "none: no migration is running or queued", `${ops.length} under way`);
    tbody.replaceChildren(...ops.flatMap((op, i) => runningRows(op, progress[i])));
    stamp();
  }

  // Two rows per operation: the figures, then what the monitor says (its estimate and the last event).
  function runningRows(op, p) {
    const c = op.predictedCost || {};
    const polled = p && p.memoryTotalMib !== undefined;
    const link = el("a", { class: "json", href: query("progress", { operation_id: op.operationId }), text: "JSON" });
    return [el("tr", { class: "first" },
      el("td", { class: "id", rowspan: "2" }, op.operationId, " ", link),
      td(op.vmId), td(`${op.sourceHostId} → ${op.targetHostId}`), td(technique((op.parameters || {}).technique)),
      el("td", {}, badge(phase((p && p.phase) || op.phase))),
      el("td", {}, el("progress", { max: "1", value: String(num(p && p.progressRatio)) }), " ", outlook(p, polled)),
      td(`${p ? amount(p.elapsedMs, 1000, "s") : "-"} / ${est(c.totalTimeMs, 1000, "s")}`, "num"),
      td(polled ? `${amount(p.memoryRemainingMib, 1, "")}of ${amount(p.memoryTotalMib, 1, "MiB")}` : "-", "num"),
      td(polled ? `${amount(p.dirtyRateMibS, 1, "")}/ ${amount(p.transferRateMibS, 1, "MiB/s")}` : "-", "num"),
      td(`${polled ? amount(p.expectedDowntimeMs, 1, "ms") : "-"} / ${est(c.downtimeMs, 1, "ms")}`, "num")),
      el("tr", {}, td(`monitor: ${(p && p.estimate) || "-"}; last event: ${op.message || "-"}`, "text sub",
                       { colspan: "9" }))];
  }

  // -- recommendations ------------------------------------------------------------------------------------

  // What a listing shows: `open` the moves whose "why" panel is open (REC/MOVE), `unfolded` the groups whose
  // superseded proposals are shown, `assessed` the hosts assessed per open move.
  const recs = { tokens: [""], at: 0, next: "", open: new Set(), unfolded: new Set(), assessed: new Map() };
  const decisions = { list: [] };

  // Recommendations of one VM together (a plan of several moves is a group of its own), groups in the order of
  // their newest; superseded proposals folded unless `unfold`.
  function grouped(list) {
    const groups = new Map();
    for (const rec of list) {
      const moves = rec.moves || [];
      const key = moves.length === 1 ? `vm ${moves[0].vmId}` : `plan ${rec.id}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(rec);
    }
    return [...groups];
  }

  function groupRows(key, members, columns, rows, unfold) {
    const superseded = members.filter(r => r.state === "RECOMMENDATION_STATE_SUPERSEDED");
    const shown = unfold || recs.unfolded.has(key) ? members : members.filter(r => !superseded.includes(r));
    const out = [];
    if (members.length > 1 || superseded.length) {
      const toggle = superseded.length && !unfold ? el("button", { type: "button", class: "fold",
        text: recs.unfolded.has(key) ? `fold ${superseded.length} superseded` : `+ ${superseded.length} superseded`,
        on: { click: () => { recs.unfolded.has(key) ? recs.unfolded.delete(key) : recs.unfolded.add(key); recsNow(); } },
      }) : null;
      out.push(el("tr", { class: "group" }, el("td", { colspan: String(columns) },
        `${key}: ${counted(members.length, "recommendation")} on this page`, toggle ? " " : null, toggle)));
    }
    return out.concat(shown.flatMap(rows));
  }

  async function loadRecommendations() {
    const stateFilter = document.getElementById("recs-state").value;
    const path = query("recommendations", { state: stateFilter, page_size: PAGE, page_token: recs.tokens[recs.at] });
    document.getElementById("recs-json").href = path;
    const doc = await getJSON(path);
    recs.next = doc.nextPageToken || "";
    document.getElementById("recs-newer").disabled = recs.at === 0;
    document.getElementById("recs-older").disabled = !recs.next;
    document.getElementById("recs-page").textContent = `page ${recs.at + 1}, ${PAGE} per page, newest first, ` +
      "grouped per VM";
    const tbody = document.getElementById("recs-rows");
    const list = doc.recommendations || [];
    if (!list.length) {
      empty(tbody, 11, stateFilter ? `no recommendation in state ${stateFilter}` : "no recommendation yet");
      return;
    }
    const unfold = stateFilter === "superseded";
    tbody.replaceChildren(...grouped(list).flatMap(([key, members]) =>
      groupRows(key, members, 11, rec => recommendationRows(rec, false), unfold)));
  }

  async function loadDecisions() {
    const path = query("recommendations", { state: "proposed", page_size: 50 });
    const doc = await getJSON(path);
    const list = decisions.list = doc.recommendations || [];
    const more = doc.nextPageToken ? " (the newest 50 shown)" : "";
    collapse("decisions", list.length ? "" : "nothing: no recommendation is proposed",
             `${list.length} proposed${more}`);
    if (cluster.auto && list.length && !list.some(r => r.id === cluster.selected)) cluster.selected = list[0].id;
    document.getElementById("decisions-rows").replaceChildren(...grouped(list).flatMap(([key, members]) =>
      groupRows(key, members, 10, rec => recommendationRows(rec, true), false)));
  }

  function redrawRecommendations() {
    recsNow();
    decisionsNow();
  }

  // The rows of one recommendation: one per move, the recommendation's own cells spanning them; short values
  // only (the prose: summary, reasons, decisions, goes into the move's "why" panel). In the decisions table,
  // the state and the move's state give way to the choice of what the cluster view shows "after".
  function recommendationRows(rec, deciding) {
    const moves = rec.moves || [];
    const span = { rowspan: String(Math.max(1, moves.length) + moves.filter((m, i) => recs.open.has(`${rec.id}/${i}`)).length) };
    const gain = rec.benefitOverCost !== undefined
      ? el("td", { class: "num", ...span }, `${fixed(rec.benefitOverCost, 1)}x`,
           el("div", { class: "sub", text: rec.benefit !== undefined ? `${fixed(rec.benefit, 2)} ${rec.benefitUnit || ""}` : "" }))
      : td("-", "num", { ...span, title: "not measured (a move asked for by a caller)" });
    const head = [
      el("td", { class: "id", title: rec.summary || "", ...span }, rec.id || "-",
         el("div", { class: "sub", text: `${utc(rec.createTime).slice(5, 16)} UTC` }),
         moves.length > 1 ? el("div", { class: "sub goal", title: rec.goal || "", text: rec.goal || "" }) : null),
      deciding ? null : el("td", { class: "state", ...span }, badge(state(rec.state)),
        rec.supersededBy ? el("div", { class: "sub", text: `superseded by ${rec.supersededBy}` }) : null),
      el("td", { class: "num", title: rec.priorityReason || "", ...span }, String(num(rec.priority) || "-")),
      gain,
    ].filter(Boolean);
    const columns = deciding ? 6 : 7;
    if (!moves.length) {
      return [el("tr", { class: "first" }, ...head, td("no moves", "empty", { colspan: String(columns) }))];
    }
    const rows = [];
    moves.forEach((m, i) => {
      const key = `${rec.id}/${i}`;
      const c = m.predictedCost || {};
      const toggle = el("button", { type: "button", text: recs.open.has(key) ? "hide" : "why", on: {
        click: () => { recs.open.has(key) ? recs.open.delete(key) : recs.open.add(key); redrawRecommendations(); },
      } });
      const last = deciding
        ? (i === 0 ? el("td", span, el("input", { type: "radio", name: "on-cluster", value: rec.id,
            "aria-label": `show the cluster after ${rec.id}`, checked: cluster.selected === rec.id ? "" : null,
            on: { change: () => showOnCluster(rec.id) } })) : null)
        : el("td", {}, moveBadge(rec, m), m.attempts ? el("div", { class: "sub", text: `attempt ${m.attempts}` }) : null);
      rows.push(el("tr", { class: i === 0 ? "first" : "" }, ...(i === 0 ? head : []),
        td(`${m.vmId} ${m.sourceHostId} → ${m.targetHostId}`), td(technique((m.parameters || {}).technique)),
        td(est(c.totalTimeMs, 1000, "s"), "num"), td(est(c.downtimeMs, 1, "ms"), "num"),
        td(est(c.transferredMib, 1, "MiB"), "num"), last, el("td", {}, toggle)));
      if (recs.open.has(key)) rows.push(detailRow(rec, m, i, columns));
    });
    return rows;
  }

  function moveBadge(rec, m) {
    const shown = badge(moveStateIn(rec, m));
    if (shown.textContent !== moveState(m.state)) {
      shown.title = `never started: the recommendation was ${shown.textContent}`;
    }
    return shown;
  }

  function detailRow(rec, move, index, columns) {
    const key = `${rec.id}/${index}`;
    const notes = [
      rec.summary, rec.goal && `goal: ${rec.goal}`,
      `automation ${rec.automationLevel || "-"}${rec.cluster ? ` in cluster ${rec.cluster}` : ""}`,
      rec.priorityReason && `priority ${num(rec.priority)}: ${rec.priorityReason}`,
      rec.decidedBy && `decided by ${rec.decidedBy}${rec.decisionReason ? `: ${rec.decisionReason}` : ""}`,
      rec.expiryReason && `expired: ${rec.expiryReason}`, rec.cancelRequested && "cancel requested",
    ].filter(Boolean);
    const cell = el("td", { colspan: String(columns), class: "text" },
      el("div", { class: "sub" }, notes.join("; "), " ",
         el("button", { type: "button", text: "show on cluster", on: { click: () => showOnCluster(rec.id) } })),
      el("ul", { class: "why" }, (move.reasons || []).map(r => el("li", { text: r }))));
    const counts = (move.rejectionCounts || []).map(c => `${c.filter} ${num(c.hosts)}`).join(", ");
    cell.append(el("div", { class: "sub", text: `${counted(num(move.hostsAssessed), "host")} assessed` +
                                                (counts ? `; rejected by ${counts}` : "") }));
    const found = recs.assessed.get(key);
    if (!found) {
      recs.assessed.set(key, { list: [], next: "", total: 0, loading: true });
      fetchAssessments(rec.id, index, "");
    }
    const a = recs.assessed.get(key);
    const link = el("a", { class: "json", href: query("assessments", { recommendation_id: rec.id, move_index: index }), text: "JSON" });
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["host", "eligible", "score", "CPU after", "memory after",
      "ruled out because"].map(h => el("th", { text: h })))),
      el("tbody", {}, a.list.map(h => el("tr", {}, td(h.hostId, "id"), td(h.eligible ? "yes" : "no"),
        td(h.eligible ? fixed(num(h.score), 3) : "-", "num"), td(`${fixed(num(h.cpuAfterRatio) * 100, 0)}%`, "num"),
        td(`${fixed(num(h.memoryAfterRatio) * 100, 0)}%`, "num"), td((h.rejections || []).join("; ") || "-", "text")))));
    const more = a.next ? el("button", { type: "button", text: "more hosts", on: { click: () => fetchAssessments(rec.id, index, a.next) } }) : null;
    cell.append(el("div", { class: "ruled-out" }, el("b", { text: `Why not elsewhere: ${a.list.length} of ${counted(a.total, "host")}` }),
      link, a.error ? el("p", { class: "error", text: a.error }) : null, table, more));
    return el("tr", { class: "detail" }, cell);
  }

  async function fetchAssessments(recId, index, token) {
    const key = `${recId}/${index}`;
    const a = recs.assessed.get(key);
    try {
      const doc = await getJSON(query("assessments", { recommendation_id: recId, move_index: index, page_size: 50, page_token: token }));
      a.list = a.list.concat(doc.assessments || []);
      a.next = doc.nextPageToken || "";
      a.total = num(doc.total);
      a.error = "";
    } catch (error) {
      if (error instanceof SessionEnded) return;
      a.error = `Could not load the hosts assessed: ${error.message}`;
    }
    redrawRecommendations();
  }

  // -- history and its plots ------------------------------------------------------------------------------

  const history = { tokens: [""], at: 0, next: "", drawn: "" };

  // The actual value, inside or outside its predicted interval, over the prediction (median [p10-p90]).
  function versus(predicted, actual, scale, unit, succeeded) {
    const cell = el("td", { class: "num" }, actual === undefined ? "-" : amount(actual, scale, unit));
    if (succeeded && predicted && actual !== undefined) {
      const inside = num(predicted.low) <= num(actual) && num(actual) <= num(predicted.high);
      cell.append(" ", el("span", { class: inside ? "inside" : "outside", text: inside ? "inside" : "outside" }));
    }
    cell.append(el("div", { class: "sub", text: `predicted ${est(predicted, scale, unit)}` }));
    return cell;
  }

  // A measured value of an outcome, or undefined: a field left unset was not measured (a move that failed before
  // starting has only its failure class), which is "-", never 0.
  function measured(o, field) { return o && o[field] !== undefined ? num(o[field]) : undefined; }

  function historyRow(op) {
    const c = op.predictedCost || {}, o = op.outcome;
    const ok = op.phase === "MIGRATION_PHASE_SUCCEEDED";
    return el("tr", {}, td(op.operationId, "id"), td(op.endTime ? utc(op.endTime) : "not ended"), td(op.vmId),
      td(`${op.sourceHostId} → ${op.targetHostId}`), td(technique((op.parameters || {}).technique)),
      el("td", {}, badge(phase(op.phase))),
      versus(c.totalTimeMs, measured(o, "totalTimeMs"), 1000, "s", ok),
      versus(c.downtimeMs, measured(o, "downtimeMs"), 1, "ms", ok),
      versus(c.transferredMib, measured(o, "transferredMib"), 1, "MiB", ok));
  }

  async function loadHistory() {
    const path = query("migrations", { page_size: PAGE, page_token: history.tokens[history.at] });
    document.getElementById("history-json").href = path;
    const doc = await getJSON(path);
    history.next = doc.nextPageToken || "";
    document.getElementById("history-newer").disabled = history.at === 0;
    document.getElementById("history-older").disabled = !history.next;
    const ops = doc.operations || [];
    const tbody = document.getElementById("history-rows");
    collapse("history", ops.length || history.at ? "" : "none: no migration executed yet", "");
    if (!ops.length) empty(tbody, 9, "no migration on this page");
    else tbody.replaceChildren(...ops.map(historyRow));
  }

  // Of succeeded moves whose downtime was measured: one not measured is left out (and said), not counted as 0 ms.
  function quantiles(ops, more) {
    const succeeded = ops.filter(o => o.phase === "MIGRATION_PHASE_SUCCEEDED");
    const done = succeeded.map(o => measured(o.outcome, "downtimeMs")).filter(v => v !== undefined)
      .sort((a, b) => a - b);
    const scope = `${more ? "the last " : ""}${counted(ops.length, "operation")}`;
    const unmeasured = succeeded.length - done.length;
    const left = unmeasured ? ` (${counted(unmeasured, "succeeded move")} without a measured downtime left out)` : "";
    if (!done.length) return `No succeeded move with a measured downtime among ${scope}: no downtime quantiles${left}.`;
    const q = p => amount(done[Math.min(done.length - 1, Math.floor(p * done.length))], 1, "ms");
    return `Downtime of the ${counted(done.length, "succeeded move")} among ${scope}: p50 ${q(0.5)}, p90 ${q(0.9)}, ` +
      `p99 ${q(0.99)}, max ${amount(done[done.length - 1], 1, "ms")}${left}.`;
  }

  async function loadPlots() {
    const doc = await getJSON(query("migrations", { page_size: PLOT_PAGE }));
    const ops = doc.operations || [];
    document.getElementById("quantiles").textContent = quantiles(ops, !!doc.nextPageToken);
    const seen = ops.map(o => `${o.operationId}:${o.phase}`).join(",") + `@${window.innerWidth}`;
    if (seen === history.drawn) return;
    const done = ops.filter(o => o.phase === "MIGRATION_PHASE_SUCCEEDED").length;
    collapse("quality", done ? "" : "none yet: no migration has succeeded, nothing to plot", "");
    if (!done) {
      history.drawn = seen;
      return;
    }
    const n = window.AdvisorPlots.draw(ops);
    history.drawn = seen;
    document.getElementById("plots-note").textContent =
      `${counted(n, "succeeded migration")} among the ${doc.nextPageToken ? "last " : ""}${counted(ops.length, "operation")}; ` +
      "the dashed diagonal is actual = predicted, each bar the predicted p10-p90 interval (a point on its bar is " +
      "inside); times in UTC.";
  }

  // -- start ----------------------------------------------------------------------------------------------

  function pager(which, reload) {
    document.getElementById(`${which === recs ? "recs" : "history"}-newer`).addEventListener("click", () => {
      which.at = Math.max(0, which.at - 1);
      reload();
    });
    document.getElementById(`${which === recs ? "recs" : "history"}-older`).addEventListener("click", () => {
      if (!which.next) return;
      which.tokens = which.tokens.slice(0, which.at + 1).concat([which.next]);
      which.at += 1;
      reload();
    });
  }

  function start() {
    // A link may open a move's "why" panel: /#why=RECOMMENDATION/MOVE (the recommendation on the first page).
    let hash = "";
    try { hash = decodeURIComponent(location.hash); } catch (e) { hash = ""; }  // a malformed link opens nothing
    const opened = /^#why=(.+\/\d+)$/.exec(hash);
    if (opened) recs.open.add(opened[1]);
    const select = document.getElementById("recs-state");
    for (const s of ["proposed", "approved", "executing", "succeeded", "failed", "aborted", "expired", "cancelled",
                     "rejected", "superseded"]) {
      select.append(el("option", { value: s, text: s }));
    }
    recsNow = every(0, "recommendations", loadRecommendations);
    decisionsNow = every(0, "decisions", loadDecisions);
    const historyNow = every(0, "history", loadHistory);
    select.addEventListener("change", () => { recs.tokens = [""]; recs.at = 0; recsNow(); });
    pager(recs, recsNow);
    pager(history, historyNow);
    window.AdvisorCluster.hooks.onChoice = redrawRecommendations;
    window.AdvisorCluster.start();
    // Logging out: the advisor ends the session (a POST bearing its secret), and this tab forgets the secret
    // even when the advisor cannot be reached (the session then ends at its expiry).
    document.getElementById("logout").addEventListener("click", async () => {
      try {
        await fetch("/logout", { method: "POST", credentials: "omit", cache: "no-store",
                                 headers: window.AdvisorSession.headers() });
      } finally {
        window.AdvisorSession.forget();
        location.replace("/");
      }
    });
    const first = [
      every(0, "calibration", loadSession)(),
      every(15000, "decisions", loadDecisions)().then(() => every(15000, "cluster", window.AdvisorCluster.load)()),
      every(30000, "calibration", loadModels)(),
      every(5000, "running", loadRunning)(),
      every(15000, "recommendations", loadRecommendations)(),
      every(15000, "history", loadHistory)(),
      every(15000, "quality", loadPlots)(),
      every(60000, "drain", window.AdvisorCluster.loadHosts)(),
    ];
    // When everything was drawn once, in ms since the navigation started (the tests print it).
    Promise.all(first).then(() => {
      window.AdvisorPlots.locate();
      document.body.dataset.drawnMs = String(Math.round(performance.now()));
    });
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(every(0, "quality", loadPlots), 300);
    });
  }

  start();
})();
