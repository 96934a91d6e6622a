// The cluster view of the advisor's page (window.AdvisorCluster): every host's load now and after a chosen
// recommendation or a dry-run drain of a host, the moves in and out, its VMs (with their disks and networks when
// opened), its migrations; and the drain preview's moves below it. app.js says which recommendation to show
// (`showOnCluster`) and is told when the choice changed (`onChoice`), to mark it in its tables.
(function () {
  "use strict";

  const { num, counted, phase, technique, fixed, est, amount, utc, el, td, badge, empty, collapse, SessionEnded, getJSON,
          query, every } = window.Advisor;
  const hooks = { onChoice: () => {} };
  const redrawRecommendations = () => hooks.onChoice();
  const clusterNow = () => every(0, "cluster", loadCluster)();

  // -- the cluster ----------------------------------------------------------------------------------------

  // What "after" shows: `selected` a stored recommendation, or `drain` a host whose dry-run drain is planned
  // (again at each refresh: the preview is of now); `auto` until a person chooses (then the newest proposal is
  // shown). `vmsOpen`: the hosts whose VM list is open, `vms` their VMs as ListVms gave them.
  const DRAIN_HINT = "choose a host to drain: its \"drain?\" button in the cluster view, or type its id there";
  const cluster = { selected: "", drain: "", auto: true, vmsOpen: new Set(), vms: new Map(), drainNote: DRAIN_HINT };

  function showOnCluster(recId) {
    Object.assign(cluster, { selected: recId, drain: "", auto: false });
    redrawRecommendations();
    clusterNow();
  }

  function showDrain(hostId) {
    Object.assign(cluster, { selected: "", drain: hostId, auto: false, drainNote: DRAIN_HINT });
    collapse("drain", "", `planning a drain of ${hostId} ...`);
    document.getElementById("drain-host").value = hostId;
    redrawRecommendations();
    clusterNow();
  }

  function percent(ratio) { return ratio === undefined ? "-" : `${fixed(ratio * 100, 0)}%`; }

  const gib = mib => amount(num(mib) / 1024, 1, "GiB");

  // Now, as a bar and a figure, and after the chosen plan where it differs.
  function load(now, after) {
    const cell = el("td", { class: "load" }, el("meter", { min: "0", max: "1", low: "0.7", high: "0.85", optimum: "0",
                                                          value: String(Math.min(1, num(now))) }), ` ${percent(now)}`);
    if (after !== undefined && percent(after) !== percent(now)) {
      cell.append(" → ", el("b", { class: after > now ? "up" : "down", text: percent(after) }));
    }
    return cell;
  }

  // CPU: the host's own latest sample (what `advisor hosts` shows); below it, where it differs or a plan is chosen,
  // the planner's count now → after the plan's moves: a projection, which may exceed the sample (see PLANNER_CPU).
  const PLANNER_CPU = "the planner's count of cores busy: the host's CPU sample, or its VMs' measured use where " +
                      "that is more (a VM not measured yet counted at all its vCPUs); \"after\" moves the plan's VMs' use";
  function cpuLoad(h) {
    const measured = h.cpuMeasuredRatio, planned = h.cpuRatio, after = h.cpuRatioAfter;
    const cell = measured === undefined
      ? el("td", { class: "load", title: "no CPU sample from this host yet" }, "no sample")
      : load(measured, undefined);
    const moves = after !== undefined && percent(after) !== percent(planned);
    if (moves || percent(planned) !== percent(measured)) {
      const line = el("div", { class: "sub planned", title: PLANNER_CPU }, `planner: ${percent(planned)}`);
      if (moves) line.append(" → ", el("b", { class: after > planned ? "up" : "down", text: percent(after) }));
      cell.append(line);
    }
    return cell;
  }

  // Free space for local disks now, and after the plan's copies where it differs; "-" where not reported.
  function diskFree(h) {
    if (h.diskFreeMib === undefined) return td("-", "num", { title: "local disk free space not reported" });
    const cell = el("td", { class: "num" }, gib(h.diskFreeMib));
    if (h.diskFreeMibAfter !== undefined && gib(h.diskFreeMibAfter) !== gib(h.diskFreeMib)) {
      cell.append(" → ", el("b", { class: "up", text: gib(h.diskFreeMibAfter) }));
    }
    return cell;
  }

  function hostOperations(ids, ops, hostId, running) {
    if (!ids.length) return td("-", "sub");
    const line = o => {
      const out = o.sourceHostId === hostId;
      const where = out ? `→ ${o.targetHostId}` : `← ${o.sourceHostId}`;
      const when = running ? "" : ` ${utc(o.endTime).slice(11, 16)}`;
      return el("li", {}, `${o.vmId} ${where} `, badge(phase(o.phase)), when);
    };
    const shown = ids.map(id => ops.get(id)).filter(Boolean);
    if (running || shown.length <= 2) return el("td", { class: "text" }, el("ul", { class: "ops" }, shown.map(line)));
    const into = shown.filter(o => o.targetHostId === hostId).length;
    return el("td", { class: "text" }, el("details", {}, el("summary", {},
      `${into} in, ${shown.length - into} out; last: `, badge(phase(shown[0].phase))),
      el("ul", { class: "ops" }, shown.map(line))));
  }

  // The plan's moves into and out of a host: the first few named, the rest counted.
  function plannedMoves(h) {
    const into = h.movesIn || [], out = h.movesOut || [];
    if (!into.length && !out.length) return null;
    const named = (moves, arrow, other) => moves.slice(0, 3).map(m => `${m.vmId} ${arrow} ${m[other]}`).join(", ") +
      (moves.length > 3 ? ` and ${moves.length - 3} more` : "");
    return el("div", { class: "sub planned" }, [
      into.length ? `in ${into.length}: ${named(into, "←", "sourceHostId")}` : "",
      out.length ? `out ${out.length}: ${named(out, "→", "targetHostId")}` : ""].filter(Boolean).join("; "));
  }

  function disks(vm) {
    const list = vm.disks || [];
    if (!list.length) return "all shared (none reported)";
    return list.map(d => `${d.target} ${gib(d.sizeMib)} (${gib(d.usedMib)} used) ${d.shared ? "shared" : "local"}`)
      .join("; ");
  }

  // The host's VMs with their disks and networks, fetched when the list is opened.
  function vmTable(hostId) {
    const found = cluster.vms.get(hostId);
    if (!found || found.loading) return el("div", { class: "sub", text: "loading the VMs ..." });
    if (found.error) return el("p", { class: "error", text: found.error });
    const link = el("a", { class: "json", href: query("vms", { host_id: hostId, page_size: 100 }), text: "JSON" });
    return el("div", { class: "vms" }, el("b", { text: `VMs on ${hostId}` }), link, el("table", {},
      el("thead", {}, el("tr", {}, ...["VM", "vCPUs", "memory", "disks", "networks"].map(t => el("th", { text: t })))),
      el("tbody", {}, found.list.map(s => {
        const vm = s.vm || {};
        return el("tr", {}, td(vm.id, "id"), td(String(num(vm.vcpus)), "num"), td(gib(vm.memoryMib), "num"),
          td(disks(vm), "text"), td((vm.networks || []).join(", ") || "-", "text"));
      }))), found.more ? el("div", { class: "sub", text: "the first 100 VMs (the JSON pages on)" }) : null);
  }

  async function fetchVms(hostId) {
    if (!cluster.vms.has(hostId)) cluster.vms.set(hostId, { loading: true });  // else the last list stays meanwhile
    try {
      const doc = await getJSON(query("vms", { host_id: hostId, page_size: 100 }));
      cluster.vms.set(hostId, { list: doc.vms || [], more: !!doc.nextPageToken });
    } catch (error) {
      if (error instanceof SessionEnded) return;
      cluster.vms.set(hostId, { error: `Could not load the VMs: ${error.message}` });
    }
    const open = document.querySelector(`#cluster-rows tr.vms-of[data-host="${CSS.escape(hostId)}"] td`);
    if (open) open.replaceChildren(vmTable(hostId));
  }

  function vmCell(h) {
    const vms = num(h.vmCount);
    const listed = h.vmIds || [];
    const details = el("details", { class: "vm-list", "data-host": h.hostId, open: cluster.vmsOpen.has(h.hostId) ? "" : null,
                                    on: { toggle: e => {
                                      if (e.target.open === cluster.vmsOpen.has(h.hostId)) return;  // redrawn
                                      const row = e.target.closest("tr");
                                      if (!e.target.open) {
                                        cluster.vmsOpen.delete(h.hostId);
                                        cluster.vms.delete(h.hostId);
                                        if (row.nextElementSibling && row.nextElementSibling.classList.contains("vms-of")) {
                                          row.nextElementSibling.remove();
                                        }
                                        return;
                                      }
                                      cluster.vmsOpen.add(h.hostId);
                                      row.after(vmRow(h.hostId));
                                      fetchVms(h.hostId);
                                    } } },
      el("summary", {}, h.vmCountAfter !== undefined && num(h.vmCountAfter) !== vms
        ? `${vms} → ${counted(num(h.vmCountAfter), "VM")}` : counted(vms, "VM")),
      el("div", { class: "sub" }, listed.join(", ") + (vms > listed.length ? ` and ${vms - listed.length} more` : "")));
    return el("td", { class: "text" }, details, plannedMoves(h));
  }

  // Below an open host: its VMs with their disks and networks, across the whole table (so it wraps, never overflows).
  function vmRow(hostId) {
    return el("tr", { class: "detail vms-of", "data-host": hostId }, el("td", { colspan: "7", class: "text" }, vmTable(hostId)));
  }

  function hostRows(h, ops) {
    const row = hostRow(h, ops);
    return cluster.vmsOpen.has(h.hostId) ? [row, vmRow(h.hostId)] : [row];
  }

  function hostRow(h, ops) {
    const networks = (h.networks || []).join(", ");
    return el("tr", { class: "host" },
      el("td", { class: "id" }, h.hostId, h.disabled ? " " : null, h.disabled ? badge("maintenance") : null, " ",
         el("button", { type: "button", class: "fold", text: "drain?", "aria-label": `preview a drain of ${h.hostId}`,
                        on: { click: () => showDrain(h.hostId) } }),
         el("div", { class: "sub", text: `${num(h.cores)} cores, ${gib(h.memoryMib)}` }),
         el("div", { class: "sub nets", title: networks, text: networks ? `networks: ${networks}` : "no network named" })),
      cpuLoad(h), load(num(h.memoryRatio), h.memoryRatioAfter), diskFree(h), vmCell(h),
      hostOperations(h.runningOperationIds || [], ops, h.hostId, true),
      hostOperations(h.recentOperationIds || [], ops, h.hostId, false));
  }

  function afterLine(doc) {
    const skipped = num(doc.movesSkipped) ? `, ${num(doc.movesSkipped)} skipped (made already, or no longer possible)` : "";
    const moves = counted(num(doc.movesApplied), "move");
    if (doc.recommendationId) return `"after": recommendation ${doc.recommendationId}, ${moves} applied${skipped}`;
    if (doc.drainHostId) return `"after": a dry-run drain of ${doc.drainHostId}, ${moves}${skipped}, nothing stored`;
    return "choose a recommendation (its \"why\" panel or the list above) or a host's drain to see the load after";
  }

  const clusterPath = () => query("cluster", cluster.drain ? { drain_host_id: cluster.drain }
                                                            : { recommendation_id: cluster.selected });

  async function loadCluster() {
    const path = clusterPath();
    document.getElementById("cluster-json").href = path;
    let doc;
    try {
      doc = await getJSON(path);
    } catch (error) {
      if (path !== clusterPath()) return;  // another choice was made meanwhile: its own load draws it
      if (cluster.drain && error.status === 503) {  // another preview is being planned: keep this one, retry soon
        setTimeout(clusterNow, 1000);
        return;
      }
      if (cluster.drain && [400, 404].includes(error.status)) {  // a host typed wrong, or gone since
        Object.assign(cluster, { drain: "", auto: false, drainNote: `${cluster.drain}: ${error.message}` });
        return loadCluster();
      }
      if (error.status !== 404 || !cluster.selected) throw error;
      Object.assign(cluster, { selected: "", auto: true });  // deleted since (retention): show the cluster as it is
      return loadCluster();
    }
    if (path !== clusterPath()) return;
    const hosts = doc.hosts || [];
    const ops = new Map((doc.operations || []).map(o => [o.operationId, o]));
    document.getElementById("cluster-after").textContent = `${counted(hosts.length, "host")}; ${afterLine(doc)}`;
    document.getElementById("cluster-clear").hidden = !doc.recommendationId && !doc.drainHostId;
    const tbody = document.getElementById("cluster-rows");
    if (!hosts.length) empty(tbody, 7, "no host known yet: push an inventory");
    else tbody.replaceChildren(...hosts.flatMap(h => hostRows(h, ops)));
    for (const hostId of cluster.vmsOpen) fetchVms(hostId);  // the open VM lists refreshed with the rest
    if (cluster.drain) drawDrain(doc.plan, "");
    else drawDrain(null, cluster.drainNote);
  }

  // -- drain preview: the moves of the dry-run drain the cluster view shows ----------------------------------

  async function loadHosts() {
    const doc = await getJSON(query("hosts", { page_size: 500 }));
    document.getElementById("drain-hosts").replaceChildren(
      ...(doc.hosts || []).map(h => el("option", { value: h.host.id })));
  }

  function previewDrain() {
    const host = document.getElementById("drain-host").value.trim();
    if (host) showDrain(host);
  }

  // `plan`: the Recommendation of the dry run; `why`: what to say instead when there is none.
  function drawDrain(plan, why) {
    const tbody = document.getElementById("drain-rows");
    document.getElementById("drain-json").href = cluster.drain ? query("drain", { host_id: cluster.drain }) : query("hosts", {});
    if (!plan) {
      collapse("drain", `none: ${why}`);
      tbody.replaceChildren();
      return;
    }
    collapse("drain", "", `${plan.summary || ""} (dry run: nothing stored)`);
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

  function start() {
    const drainNow = every(0, "drain", previewDrain);
    document.getElementById("drain-go").addEventListener("click", drainNow);
    document.getElementById("drain-host").addEventListener("keydown", e => { if (e.key === "Enter") drainNow(); });
    document.getElementById("cluster-clear").addEventListener("click", () => {
      Object.assign(cluster, { selected: "", drain: "", auto: false, drainNote: DRAIN_HINT });
      redrawRecommendations();
      clusterNow();
    });
  }

  window.AdvisorCluster = { state: cluster, hooks, showOnCluster, start, load: loadCluster, loadHosts };
})();
