// The advisor's web page: it reads the JSON endpoints (the API's own JSON: lowerCamelCase, enums by name,
// fields at their default left out) and draws tables and plots, refreshing without reloading. Read only.
// Everything from the server goes into the page as text (textContent), never as HTML.
(function () {
  "use strict";

  const PAGE = 20;
  const PLOT_PAGE = 500;
  const API = "/api/v1/";
  let stopped = false;
  let recsNow = () => {};  // redraws the recommendations now (set at start)

  // -- values as people read them -------------------------------------------------------------------------

  function num(v) { return v === undefined || v === null ? 0 : Number(v); }

  function name(value, prefix) {
    return value ? String(value).replace(prefix, "").toLowerCase() : "-";
  }
  const state = v => name(v, "RECOMMENDATION_STATE_");
  const phase = v => name(v, "MIGRATION_PHASE_");
  const technique = v => name(v, "TECHNIQUE_");
  const moveState = v => name(v, "MOVE_STATE_");

  function fixed(v, digits) { return Number(v).toFixed(digits); }

  function digitsFor(v) { return Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 1 ? 1 : 2; }

  // An estimate as "median [low-high] unit"; absent fields are 0 (proto3 defaults).
  function est(e, scale, unit) {
    if (!e) return "-";
    const m = num(e.median) / scale, lo = num(e.low) / scale, hi = num(e.high) / scale;
    const d = digitsFor(Math.max(m, hi));
    return `${fixed(m, d)} [${fixed(lo, d)}-${fixed(hi, d)}] ${unit}`;
  }

  function amount(v, scale, unit) {
    const x = num(v) / scale;
    return `${fixed(x, digitsFor(x))} ${unit}`;
  }

  function utc(ts) {
    if (!ts) return "-";
    const d = new Date(ts);
    return isNaN(d) ? "-" : d.toISOString().replace("T", " ").slice(0, 19);
  }

  // -- the DOM, built from text only ----------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const td = (text, cls, extra) => el("td", Object.assign({ class: cls, text }, extra || {}));
  const badge = text => el("span", { class: `badge s-${text}`, text });

  function empty(tbody, columns, text) {
    tbody.replaceChildren(el("tr", {}, td(text, "empty", { colspan: columns })));
  }

  // -- fetching, errors, schedules --------------------------------------------------------------------------

  class SessionEnded extends Error {}

  async function getJSON(path) {
    const response = await fetch(path, { credentials: "same-origin", cache: "no-store",
                                         headers: { Accept: "application/json" } });
    let doc = null;
    try { doc = await response.json(); } catch (e) { doc = null; }
    if (response.status === 401) {
      endSession(doc);
      throw new SessionEnded();
    }
    if (!response.ok) throw new Error((doc && doc.error) || `HTTP ${response.status}`);
    return doc;
  }

  function query(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return API + path + (s ? `?${s}` : "");
  }

  function endSession(doc) {
    if (stopped) return;
    stopped = true;
    const banner = document.getElementById("banner");
    banner.textContent = `Session ended (${(doc && doc.error) || "login required"}): ` +
      `${(doc && doc.login) || "run advisor ui for a new login link"}.`;
    banner.hidden = false;
  }

  function showError(section, error) {
    const host = document.getElementById(section);
    let p = host.querySelector(":scope > p.error");
    if (!p) {
      p = el("p", { class: "error" });
      host.querySelector("h2").after(p);
    }
    p.textContent = `Could not load: ${error.message || error}`;
  }

  function clearError(section) {
    const p = document.getElementById(section).querySelector(":scope > p.error");
    if (p) p.remove();
  }

  function every(ms, section, task) {
    const run = async () => {
      if (stopped) return;
      try {
        await task();
        clearError(section);
      } catch (error) {
        if (!(error instanceof SessionEnded)) showError(section, error);
      }
      if (!stopped && ms) setTimeout(run, ms);
    };
    return run;
  }

  function stamp() {
    document.getElementById("updated").textContent = `updated ${utc(new Date().toISOString()).slice(11)} UTC`;
  }

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
      empty(tbody, 5, "no migration has succeeded yet: nothing measured against its prediction");
      return;
    }
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

  function outlook(p) {
    if (!p || ["MIGRATION_PHASE_SUCCEEDED", "MIGRATION_PHASE_FAILED", "MIGRATION_PHASE_ABORTED"].includes(p.phase)) {
      return "-";
    }
    const ratio = `${fixed(num(p.progressRatio) * 100, 0)}%`;
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
    if (!ops.length) {
      empty(tbody, 10, "no migration is running or queued");
    } else {
      tbody.replaceChildren(...ops.flatMap((op, i) => runningRows(op, progress[i])));
    }
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
      el("td", {}, el("progress", { max: "1", value: String(num(p && p.progressRatio)) }), " ", outlook(p)),
      td(`${p ? amount(p.elapsedMs, 1000, "s") : "-"} / ${est(c.totalTimeMs, 1000, "s")}`, "num"),
      td(polled ? `${amount(p.memoryRemainingMib, 1, "")}of ${amount(p.memoryTotalMib, 1, "MiB")}` : "-", "num"),
      td(polled ? `${amount(p.dirtyRateMibS, 1, "")}/ ${amount(p.transferRateMibS, 1, "MiB/s")}` : "-", "num"),
      td(`${polled ? amount(p.expectedDowntimeMs, 1, "ms") : "-"} / ${est(c.downtimeMs, 1, "ms")}`, "num")),
      el("tr", {}, td(`monitor: ${(p && p.estimate) || "-"}; last event: ${op.message || "-"}`, "text sub",
                       { colspan: "9" }))];
  }

  // -- recommendations ------------------------------------------------------------------------------------

  const recs = { tokens: [""], at: 0, next: "", open: new Set(), assessed: new Map() };

  async function loadRecommendations() {
    const stateFilter = document.getElementById("recs-state").value;
    const path = query("recommendations", { state: stateFilter, page_size: PAGE, page_token: recs.tokens[recs.at] });
    document.getElementById("recs-json").href = path;
    const doc = await getJSON(path);
    recs.next = doc.nextPageToken || "";
    document.getElementById("recs-newer").disabled = recs.at === 0;
    document.getElementById("recs-older").disabled = !recs.next;
    document.getElementById("recs-page").textContent = `page ${recs.at + 1}, ${PAGE} per page, newest first`;
    const tbody = document.getElementById("recs-rows");
    const list = doc.recommendations || [];
    if (!list.length) {
      empty(tbody, 11, stateFilter ? `no recommendation in state ${stateFilter}` : "no recommendation yet");
      return;
    }
    tbody.replaceChildren(...list.flatMap(recommendationRows));
  }

  function recommendationRows(rec) {
    const moves = rec.moves || [];
    const span = { rowspan: String(Math.max(1, moves.length) + moves.filter((m, i) => recs.open.has(`${rec.id}/${i}`)).length) };
    const gain = rec.benefitOverCost !== undefined
      ? el("td", { class: "num", ...span }, `${fixed(rec.benefitOverCost, 1)}x`,
           el("div", { class: "sub", text: rec.benefit !== undefined ? `${fixed(rec.benefit, 2)} ${rec.benefitUnit || ""}` : "" }))
      : td("-", "num", { ...span, title: "not measured (a move asked for by a caller)" });
    const notes = [rec.expiryReason && `expired: ${rec.expiryReason}`, rec.cancelRequested && "cancel requested",
                   rec.supersededBy && `superseded by ${rec.supersededBy}`,
                   rec.decidedBy && `decided by ${rec.decidedBy}${rec.decisionReason ? `: ${rec.decisionReason}` : ""}`]
      .filter(Boolean).join("; ");
    const automation = `automation ${rec.automationLevel || "-"}${rec.cluster ? ` in ${rec.cluster}` : ""}`;
    const head = [
      el("td", { class: "id", title: rec.summary || "", ...span }, rec.id || "-",
         el("div", { class: "sub", text: `${utc(rec.createTime)} UTC` }),
         el("div", { class: "sub", text: rec.goal || "" }), el("div", { class: "sub", text: automation })),
      el("td", { class: "text state", ...span }, badge(state(rec.state)), el("div", { class: "sub", text: notes })),
      el("td", { class: "text priority", ...span }, String(num(rec.priority) || "-"),
         el("div", { class: "sub", text: rec.priorityReason || "" })),
      gain,
    ];
    if (!moves.length) {
      return [el("tr", { class: "first" }, ...head, td(rec.summary || "no moves", "empty text", { colspan: "7" }))];
    }
    const rows = [];
    moves.forEach((m, i) => {
      const key = `${rec.id}/${i}`;
      const c = m.predictedCost || {};
      const toggle = el("button", { type: "button", text: recs.open.has(key) ? "hide" : "why", on: {
        click: () => { recs.open.has(key) ? recs.open.delete(key) : recs.open.add(key); recsNow(); },
      } });
      rows.push(el("tr", { class: i === 0 ? "first" : "" }, ...(i === 0 ? head : []),
        td(`${m.vmId} ${m.sourceHostId} → ${m.targetHostId}`), td(technique((m.parameters || {}).technique)),
        td(est(c.totalTimeMs, 1000, "s"), "num"), td(est(c.downtimeMs, 1, "ms"), "num"),
        td(est(c.transferredMib, 1, "MiB"), "num"),
        el("td", {}, badge(moveState(m.state)), m.attempts ? el("div", { class: "sub", text: `attempt ${m.attempts}` }) : null),
        el("td", {}, toggle)));
      if (recs.open.has(key)) rows.push(detailRow(rec, m, i));
    });
    return rows;
  }

  function detailRow(rec, move, index) {
    const key = `${rec.id}/${index}`;
    const cell = el("td", { colspan: "7", class: "text" },
      el("div", { class: "sub", text: rec.summary || "" }),
      el("ul", { class: "why" }, (move.reasons || []).map(r => el("li", { text: r }))));
    const counts = (move.rejectionCounts || []).map(c => `${c.filter} ${num(c.hosts)}`).join(", ");
    cell.append(el("div", { class: "sub", text: `${num(move.hostsAssessed)} host(s) assessed` +
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
    cell.append(el("div", { class: "ruled-out" }, el("b", { text: `Why not elsewhere: ${a.list.length} of ${a.total} host(s)` }),
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
    recsNow();
  }

  // -- history and its plots ------------------------------------------------------------------------------

  const history = { tokens: [""], at: 0, next: "", drawn: "" };

  function versus(predicted, actual, scale, unit, succeeded) {
    if (actual === undefined) return td("-", "num");
    const cell = el("td", { class: "num" }, amount(actual, scale, unit));
    if (succeeded && predicted) {
      const inside = num(predicted.low) <= num(actual) && num(actual) <= num(predicted.high);
      cell.append(" ", el("span", { class: inside ? "inside" : "outside", text: inside ? "inside" : "outside" }));
    }
    return cell;
  }

  function historyRow(op) {
    const c = op.predictedCost || {}, o = op.outcome;
    const ok = op.phase === "MIGRATION_PHASE_SUCCEEDED";
    return el("tr", {}, td(op.operationId, "id"), td(op.endTime ? utc(op.endTime) : "not ended"), td(op.vmId),
      td(`${op.sourceHostId} → ${op.targetHostId}`), td(technique((op.parameters || {}).technique)),
      el("td", {}, badge(phase(op.phase))),
      td(est(c.totalTimeMs, 1000, "s"), "num"), versus(c.totalTimeMs, o && num(o.totalTimeMs), 1000, "s", ok),
      td(est(c.downtimeMs, 1, "ms"), "num"), versus(c.downtimeMs, o && num(o.downtimeMs), 1, "ms", ok),
      td(est(c.transferredMib, 1, "MiB"), "num"), versus(c.transferredMib, o && num(o.transferredMib), 1, "MiB", ok));
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
    if (!ops.length) empty(tbody, 12, "no migration executed yet");
    else tbody.replaceChildren(...ops.map(historyRow));
  }

  function quantiles(ops, more) {
    const done = ops.filter(o => o.phase === "MIGRATION_PHASE_SUCCEEDED" && o.outcome)
      .map(o => num(o.outcome.downtimeMs)).sort((a, b) => a - b);
    const scope = `${more ? "the last " : ""}${ops.length} operation(s)`;
    if (!done.length) return `No succeeded move among ${scope}: no downtime quantiles.`;
    const q = p => amount(done[Math.min(done.length - 1, Math.floor(p * done.length))], 1, "ms");
    return `Downtime of the ${done.length} succeeded move(s) among ${scope}: p50 ${q(0.5)}, p90 ${q(0.9)}, ` +
      `p99 ${q(0.99)}, max ${amount(done[done.length - 1], 1, "ms")}.`;
  }

  async function loadPlots() {
    const doc = await getJSON(query("migrations", { page_size: PLOT_PAGE }));
    const ops = doc.operations || [];
    document.getElementById("quantiles").textContent = quantiles(ops, !!doc.nextPageToken);
    const seen = ops.map(o => `${o.operationId}:${o.phase}`).join(",") + `@${window.innerWidth}`;
    if (seen === history.drawn) return;
    const n = window.AdvisorPlots.draw(ops);
    history.drawn = seen;
    document.getElementById("plots-note").textContent =
      `${n} succeeded migration(s) among the ${doc.nextPageToken ? "last " : ""}${ops.length} operation(s); ` +
      "the dashed line is actual = predicted.";
  }

  // -- drain preview --------------------------------------------------------------------------------------

  async function loadHosts() {
    const doc = await getJSON(query("hosts", { page_size: 500 }));
    document.getElementById("drain-hosts").replaceChildren(
      ...(doc.hosts || []).map(h => el("option", { value: h.host.id })));
  }

  async function previewDrain() {
    const host = document.getElementById("drain-host").value.trim();
    const summary = document.getElementById("drain-summary");
    const tbody = document.getElementById("drain-rows");
    if (!host) {
      summary.textContent = "Choose a host to drain.";
      return;
    }
    const path = query("drain", { host_id: host });
    document.getElementById("drain-json").href = path;
    summary.textContent = `Planning a drain of ${host} ...`;
    const plan = await getJSON(path);
    summary.textContent = `${plan.summary || ""} (dry run: nothing stored)`;
    const moves = plan.moves || [];
    if (!moves.length) {
      empty(tbody, 7, "no move");
      return;
    }
    tbody.replaceChildren(...moves.map(m => {
      const c = m.predictedCost || {};
      return el("tr", {}, td(m.vmId), td(`${m.sourceHostId} → ${m.targetHostId}`),
        td(technique((m.parameters || {}).technique)), td(est(c.totalTimeMs, 1000, "s"), "num"),
        td(est(c.downtimeMs, 1, "ms"), "num"), td(est(c.transferredMib, 1, "MiB"), "num"),
        el("td", { class: "text" }, el("ul", { class: "why" }, (m.reasons || []).map(r => el("li", { text: r })))));
    }));
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
    const opened = /^#why=(.+\/\d+)$/.exec(decodeURIComponent(location.hash));
    if (opened) recs.open.add(opened[1]);
    const select = document.getElementById("recs-state");
    for (const s of ["proposed", "approved", "executing", "succeeded", "failed", "aborted", "expired", "cancelled",
                     "rejected", "superseded"]) {
      select.append(el("option", { value: s, text: s }));
    }
    recsNow = every(0, "recommendations", loadRecommendations);
    const historyNow = every(0, "history", loadHistory);
    select.addEventListener("change", () => { recs.tokens = [""]; recs.at = 0; recsNow(); });
    pager(recs, recsNow);
    pager(history, historyNow);
    const drainNow = every(0, "drain", previewDrain);
    document.getElementById("drain-go").addEventListener("click", drainNow);
    document.getElementById("drain-host").addEventListener("keydown", e => { if (e.key === "Enter") drainNow(); });
    const first = [
      every(0, "calibration", loadSession)(),
      every(30000, "calibration", loadModels)(),
      every(5000, "running", loadRunning)(),
      every(15000, "recommendations", loadRecommendations)(),
      every(15000, "history", loadHistory)(),
      every(15000, "quality", loadPlots)(),
      every(60000, "drain", loadHosts)(),
    ];
    // When everything was drawn once, in ms since the navigation started (the tests print it).
    Promise.all(first).then(() => { document.body.dataset.drawnMs = String(Math.round(performance.now())); });
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(every(0, "quality", loadPlots), 300);
    });
  }

  start();
})();
