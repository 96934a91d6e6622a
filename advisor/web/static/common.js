// What every part of the advisor's page shares (window.Advisor): values as people read them, the DOM built from
// text only (never HTML), fetching the JSON endpoints with the session's secret (session.js; the API's own JSON:
// lowerCamelCase, enums by name, fields at their default left out), errors per section and refresh schedules.
// Loaded after session.js, before cluster.js and app.js.
(function () {
  "use strict";

  const API = "/api/v1/";
  const HINT = "run advisor ui --data-dir DIR (DIR: the advisor's data directory) for a login link";
  const session = window.AdvisorSession;
  let stopped = false;  // no session, or it ended: nothing is fetched any more

  // -- values as people read them -------------------------------------------------------------------------

  function num(v) { return v === undefined || v === null ? 0 : Number(v); }

  function name(value, prefix) {
    return value ? String(value).replace(prefix, "").toLowerCase() : "-";
  }
  const state = v => name(v, "RECOMMENDATION_STATE_");
  const phase = v => name(v, "MIGRATION_PHASE_");
  const technique = v => name(v, "TECHNIQUE_");
  const moveState = v => name(v, "MOVE_STATE_");
  // Nothing more can happen to a recommendation in these (advisor.domain.recommendation.ENDED).
  const ENDED = new Set(["rejected", "succeeded", "expired", "cancelled", "superseded"]);
  // A move's state as it stands: one never started in a recommendation that has ended (waiting, as one rejected
  // before dropping was stored, or dropped) shows the recommendation's end: rejected, superseded, expired...
  const NOT_STARTED = new Set(["waiting", "dropped"]);
  const moveStateIn = (rec, m) => NOT_STARTED.has(moveState(m.state)) && ENDED.has(state(rec.state))
    ? state(rec.state) : moveState(m.state);

  // "1 host", "3 hosts", "0 hosts": the exact number and its exact noun, never a plural in parentheses.
  function counted(n, noun) { return `${n} ${noun}${n === 1 ? "" : "s"}`; }

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

  // A section with nothing to show folds to its title line, which then says so (`nothing`); with something to
  // show, the title line carries `summary` beside it.
  function collapse(section, nothing, summary) {
    document.getElementById(section).classList.toggle("nothing", !!nothing);
    document.getElementById(`${section}-count`).textContent = nothing || summary || "";
  }

  // -- fetching, errors, schedules --------------------------------------------------------------------------

  class SessionEnded extends Error {}

  async function getJSON(path) {
    const response = await fetch(path, { credentials: "omit", cache: "no-store",
                                         headers: session.headers({ Accept: "application/json" }) });
    let doc = null;
    try { doc = await response.json(); } catch (e) { doc = null; }
    if (response.status === 401) {
      endSession(doc);
      throw new SessionEnded();
    }
    if (!response.ok) throw Object.assign(new Error((doc && doc.error) || `HTTP ${response.status}`),
                                          { status: response.status });
    return doc;
  }

  function query(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return API + path + (s ? `?${s}` : "");
  }

  // No session, or the advisor ended it: the page says so instead of its sections, and forgets the secret.
  function endSession(doc) {
    if (stopped) return;
    stopped = true;
    session.forget();
    document.title = "Login required";
    const banner = document.getElementById("banner");
    banner.textContent = `Login required: ${(doc && doc.error) || "you are not logged in"}; ` +
      `${(doc && doc.login) || HINT}.`;
    banner.hidden = false;
    document.querySelector("main").hidden = true;
    document.getElementById("logout").hidden = true;
  }

  // A JSON link: a navigation would carry no session, so a click fetches the JSON with it and opens it in a new
  // tab as a blob of this origin.
  async function openJSON(event) {
    const link = event.target instanceof Element ? event.target.closest("a.json") : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    try {
      const doc = await getJSON(link.getAttribute("href"));
      const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
      window.open(url, "_blank", "noopener");
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      if (!(error instanceof SessionEnded)) link.title = `Could not load: ${error.message || error}`;
    }
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

  if (!session.read()) endSession(null);
  document.addEventListener("click", openJSON);

  window.Advisor = { API, num, counted, state, phase, technique, moveState, moveStateIn, fixed, est, amount, utc, el, td, badge,
                     empty, collapse, SessionEnded, getJSON, query, every, stamp };
})();
