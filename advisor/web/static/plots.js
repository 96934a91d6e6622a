// Plots of the history with uPlot (static/uPlot.iife.min.js, pinned: static/README.md): predicted median
// against actual for time, downtime and data (log axes, the diagonal is "as predicted"), and each ended
// migration's error |predicted median - actual| / actual against its end time. Only succeeded migrations count,
// as in the advisor's running error. Each figure says in data-points how many points it drew and in data-bbox
// where its plotting area is (page pixels), so a test can look at the pixels there.
(function () {
  "use strict";

  const COLOURS = { time: "#1f5fbf", downtime: "#c62828", data: "#1a7f37" };
  const QUANTITIES = [
    ["time", "totalTimeMs", 1000],  // ms -> s
    ["downtime", "downtimeMs", 1],
    ["data", "transferredMib", 1],
  ];

  function num(v) { return v === undefined || v === null ? 0 : Number(v); }

  function succeeded(ops) {
    return ops.filter(o => o.phase === "MIGRATION_PHASE_SUCCEEDED" && o.outcome && o.endTime);
  }

  function placeholder(figure, text, points) {
    const box = figure.querySelector(".canvas");
    const p = document.createElement("div");
    p.className = "placeholder";
    p.textContent = text;
    box.replaceChildren(p);
    figure.dataset.points = String(points);
    delete figure.dataset.bbox;
  }

  function mark(figure, u, points) {
    const r = u.over.getBoundingClientRect();
    figure.dataset.points = String(points);
    figure.dataset.bbox = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
      .map(Math.round).join(",");
  }

  function size(figure) {
    const box = figure.querySelector(".canvas");
    return { width: Math.max(200, box.clientWidth), height: Math.max(150, box.clientHeight) };
  }

  function pointsSeries(label, colour) {
    return { label, stroke: colour, width: 0, paths: () => null,
             points: { show: true, size: 7, space: 0, width: 1, stroke: colour, fill: colour } };
  }

  // Whole decades, so that a log axis is ticked at powers of 10.
  function logRange(values) {
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values) / 1.2)));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values) * 1.2)));
    return [lo, hi];
  }

  // Predicted (x) against actual (y) for one quantity, with the diagonal.
  function scatter(figure, pairs, colour, unit) {
    const kept = pairs.filter(([p, a]) => p > 0 && a > 0).sort((a, b) => a[0] - b[0]);
    const left = pairs.length - kept.length;
    if (!kept.length) {
      placeholder(figure, pairs.length ? `${pairs.length} migration(s), none with both values above 0 (log axes)`
        : "no succeeded migration yet", 0);
      return;
    }
    const xs = kept.map(k => k[0]), ys = kept.map(k => k[1]);
    const range = logRange(xs.concat(ys));
    const opts = {
      ...size(figure),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, distr: 3, log: 10, range: () => range },
                y: { distr: 3, log: 10, range: () => range } },
      axes: [{ label: `predicted median, ${unit}`, labelSize: 18, size: 36 },
             { label: `actual, ${unit}`, labelSize: 18, size: 54 }],
      series: [{}, pointsSeries("migrations", colour),
               { label: "as predicted", stroke: "#8c959f", width: 1, dash: [4, 4], points: { show: false } }],
      hooks: { draw: [u => mark(figure, u, kept.length)] },
    };
    figure.querySelector(".canvas").replaceChildren();
    new uPlot(opts, [xs, ys, xs], figure.querySelector(".canvas"));
    figure.title = left ? `${left} point(s) at 0 left out (log axes)` : "";
  }

  // Error of each quantity against the migration's end time.
  function errors(figure, ops) {
    const rows = ops.map(o => {
      const row = [Date.parse(o.endTime) / 1000];
      for (const [, field] of QUANTITIES) {
        const actual = num(o.outcome[field]);
        const predicted = num((o.predictedCost[field] || {}).median);
        const ape = actual > 0 ? Math.abs(predicted - actual) / actual * 100 : null;
        row.push(ape !== null && ape > 0 ? ape : null);  // 0 cannot sit on a log axis (an exact prediction)
      }
      return row;
    }).sort((a, b) => a[0] - b[0]);
    const values = rows.flatMap(r => r.slice(1)).filter(v => v !== null);
    if (!values.length) {
      placeholder(figure, "no succeeded migration yet", 0);
      return;
    }
    const xs = rows.map(r => r[0]);
    const xr = xs[0] === xs[xs.length - 1] ? [xs[0] - 60, xs[0] + 60] : [xs[0], xs[xs.length - 1]];
    const pad = (xr[1] - xr[0]) * 0.03;
    const opts = {
      ...size(figure),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => [xr[0] - pad, xr[1] + pad] },
                y: { distr: 3, log: 10, range: () => logRange(values) } },
      axes: [{ size: 48 }, { label: "|predicted - actual| / actual, %", labelSize: 18, size: 72 }],
      series: [{}].concat(QUANTITIES.map(([name]) => pointsSeries(name, COLOURS[name]))),
      hooks: { draw: [u => mark(figure, u, values.length)] },
    };
    figure.querySelector(".canvas").replaceChildren();
    new uPlot(opts, [xs].concat([0, 1, 2].map(i => rows.map(r => r[i + 1]))), figure.querySelector(".canvas"));
  }

  function draw(ops) {
    if (typeof uPlot !== "function") {
      throw new Error("the plotting library (uPlot) did not load");
    }
    const done = succeeded(ops);
    for (const [name, field, scale] of QUANTITIES) {
      const pairs = done.map(o => [num((o.predictedCost[field] || {}).median) / scale, num(o.outcome[field]) / scale]);
      scatter(document.getElementById(`plot-${name}`), pairs, COLOURS[name], name === "time" ? "s"
        : name === "downtime" ? "ms" : "MiB");
    }
    errors(document.getElementById("plot-error"), done);
    return done.length;
  }

  window.AdvisorPlots = { draw };
})();
