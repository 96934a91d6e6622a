// Plots of the history with uPlot (static/uPlot.iife.min.js, pinned: static/README.md): predicted median
// against actual for time, downtime and data (log axes), each point with its predicted p10-p90 interval as a
// vertical bar (the actual is inside when the point sits on its bar) and the diagonal actual = predicted drawn
// across the whole plot; and each ended migration's error |predicted median - actual| / actual against its end
// time, in UTC. Only succeeded migrations count, as in the advisor's running error. Each figure says in
// data-points how many points it drew, in data-bars how many intervals, in data-bbox where its plotting area is
// (page pixels) and the error plot in data-x-ticks the times its axis shows, so a test can check the pixels.
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
    figure.dataset.points = String(points);
    delete figure.dataset.bars;
    locate(figure);
  }

  // Where the figure's plotting area is now: sections above it change height as they fill, so the page asks
  // again once everything is drawn.
  function locate(figure) {
    const over = figure.querySelector(".u-over");
    if (!over) return;
    const r = over.getBoundingClientRect();
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

  // On the plot's canvas (its pixels, not CSS ones): a segment between two points given in the scales' values.
  function segment(u, x0, y0, x1, y1) {
    u.ctx.moveTo(u.valToPos(x0, "x", true), u.valToPos(y0, "y", true));
    u.ctx.lineTo(u.valToPos(x1, "x", true), u.valToPos(y1, "y", true));
  }

  // The diagonal actual = predicted from corner to corner, and each point's p10-p90 interval as a capped bar.
  function guides(u, range, bars, colour) {
    const ctx = u.ctx, cap = 3 * devicePixelRatio;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    ctx.beginPath();
    ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.strokeStyle = "#8c959f";
    ctx.lineWidth = devicePixelRatio;
    segment(u, range[0], range[0], range[1], range[1]);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.strokeStyle = colour;
    for (const [x, low, high] of bars) {
      segment(u, x, low, x, high);
      const px = u.valToPos(x, "x", true);
      for (const y of [low, high]) {
        const py = u.valToPos(y, "y", true);
        ctx.moveTo(px - cap, py);
        ctx.lineTo(px + cap, py);
      }
    }
    ctx.stroke();
    ctx.restore();
  }

  // Predicted (x) against actual (y) for one quantity, with each point's interval and the diagonal.
  function scatter(figure, pairs, colour, unit) {
    const kept = pairs.filter(([p, a]) => p > 0 && a > 0).sort((a, b) => a[0] - b[0]);
    const left = pairs.length - kept.length;
    if (!kept.length) {
      placeholder(figure, pairs.length ? `${window.Advisor.counted(pairs.length, "migration")}, none with both values above 0 (log axes)`
        : "no succeeded migration yet", 0);
      return;
    }
    const xs = kept.map(k => k[0]), ys = kept.map(k => k[1]);
    // Bars where the interval can sit on a log axis (its low above 0; else from the axis' bottom).
    const bars = kept.filter(k => k[3] > 0).map(([p, , low, high]) => [p, low, high]);
    const range = logRange(xs.concat(ys, bars.map(b => b[2]), bars.map(b => b[1]).filter(v => v > 0)));
    bars.forEach(b => { if (!(b[1] > 0)) b[1] = range[0]; });
    const opts = {
      ...size(figure),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, distr: 3, log: 10, range: () => range },
                y: { distr: 3, log: 10, range: () => range } },
      axes: [{ label: `predicted median, ${unit}`, labelSize: 18, size: 36 },
             { label: `actual, ${unit}`, labelSize: 18, size: 54 }],
      series: [{}, pointsSeries("migrations", colour)],
      hooks: { drawAxes: [u => guides(u, range, bars, colour)],  // under the points
               draw: [u => { mark(figure, u, kept.length); figure.dataset.bars = String(bars.length); }] },
    };
    figure.querySelector(".canvas").replaceChildren();
    new uPlot(opts, [xs, ys], figure.querySelector(".canvas"));
    figure.title = left ? `${window.Advisor.counted(left, "point")} at 0 left out (log axes)` : "";
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
    // Times as UTC, the page's one time zone (uPlot would show the browser's local time, US-style).
    const ticks = (u, splits) => {
      const span = (u.scales.x.max - u.scales.x.min) || 1;
      const shown = splits.map(s => new Date(s * 1000).toISOString().replace("T", " "))
        .map(t => span > 2 * 86400 ? t.slice(5, 10) : span > 600 ? t.slice(11, 16) : t.slice(11, span > 30 ? 19 : 21));
      figure.dataset.xTicks = shown.join(",");
      return shown;
    };
    const opts = {
      ...size(figure),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => [xr[0] - pad, xr[1] + pad] },
                y: { distr: 3, log: 10, range: () => logRange(values) } },
      axes: [{ size: 48, space: 90, values: ticks, label: "end time, UTC", labelSize: 14 },
             { label: "|predicted - actual| / actual, %", labelSize: 18, size: 72 }],
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
      const pairs = done.map(o => {
        const p = o.predictedCost[field] || {};
        return [num(p.median) / scale, num(o.outcome[field]) / scale, num(p.low) / scale, num(p.high) / scale];
      });
      scatter(document.getElementById(`plot-${name}`), pairs, COLOURS[name], name === "time" ? "s"
        : name === "downtime" ? "ms" : "MiB");
    }
    errors(document.getElementById("plot-error"), done);
    return done.length;
  }

  window.AdvisorPlots = { draw, locate: () => document.querySelectorAll("figure.plot").forEach(locate) };
})();
