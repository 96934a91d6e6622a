"""Host and VM metrics read from Prometheus: node_exporter, the libvirt exporter and the advisor's own dirty rates.

PromQL in, domain values out. `queries.PrometheusQueries` holds the PromQL and the label names (configuration,
with documented defaults, see docs/prometheus.md); `convert.convert` is the pure function that turns query results
(the JSON `result` lists the HTTP API returns) into `HostSample`s and `VmSample`s; `source.PrometheusSource` runs
the queries through prometheus-api-client, keeps the last good state and reports its health.

What real deployments do, and what happens here:
- a series is missing: that metric stays unmeasured (None), never 0; `PollResult.missing` counts them;
- a sample is older than `max_age_s` (its exporter stopped): ignored, counted as "stale"; dated more than
  validation.MAX_FUTURE_SKEW_S ahead (a wrong clock): ignored, counted as "future";
- counters reset (restarts): the default PromQL uses rate(), which handles resets;
- units differ: each query has an explicit `scale` to the domain's unit (bytes -> MiB, ms -> s, ...);
- a series' labels do not map to a known host/VM: skipped, counted ("unknown_host", "unknown_vm", "unlabelled");
- NaN/Inf: dropped, counted ("non_finite"); values beyond any machine (a unit mistake): "out_of_range";
- the server is down or slow: every request has a deadline; the poll fails as a whole with a clear message, the
  last good state is served with its age, and `SourceHealth` says how long it has been failing.
"""
