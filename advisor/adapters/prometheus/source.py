"""The Prometheus source: runs the queries through prometheus-api-client, keeps the last good state, reports its
health. A down or slow server gives a timeout, the last good state with its age, and a count of failures."""

from __future__ import annotations

import ast
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
import requests.exceptions
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from advisor.adapters.prometheus.convert import convert, convert_range
from advisor.adapters.prometheus.queries import (
    MAX_RANGE_POINTS,
    VM_HISTORY_METRICS,
    PrometheusError,
    PrometheusQueries,
    promql_string,
)
from advisor.domain.model import HostSample, VmSample

log = logging.getLogger("advisor.telemetry.prometheus")

# The largest answer read (decompressed): ~150,000 series, 40 times the 4,000 VMs benchmarked. Beyond it a query
# matched far more than it should, and 14 such answers parsed at once would take gigabytes.
MAX_ANSWER_BYTES = 16 << 20


@dataclass(frozen=True)
class SourceHealth:
    """Whether the last poll succeeded, when one last did, the newest error (kept after recovery, for the
    operator), and how many polls in a row have failed."""

    ok: bool
    last_success_s: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class PollResult:
    """What one poll yields. After a failed poll (`health.ok` False) the samples are the last good ones."""

    host_samples: list[HostSample]
    vm_samples: list[VmSample]
    skipped: dict[str, int]
    health: SourceHealth
    # Known entities without a value, by metric name (see `Converted.missing`).
    missing: dict[str, int] = field(default_factory=dict)
    # When the state served was read (source clock), and how old it is: 0 after a successful poll; after a failed
    # one, the last good state is served and `age_s` grows. None when nothing was ever read.
    as_of_s: float | None = None
    age_s: float | None = None
    # Wall seconds per request of the last successful poll, by query ("host_cpu", "host_cpu.freshness", ...).
    query_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def from_cache(self) -> bool:
        return not self.health.ok


class _TooLarge(requests.exceptions.RequestException):
    pass


def _capped(max_bytes: int) -> Callable[..., requests.Response]:
    """A requests response hook that reads the body itself, up to `max_bytes` (the hook runs before requests
    reads it whole)."""

    def read(response: requests.Response, *args: object, **kwargs: object) -> requests.Response:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            response.close()
            raise _TooLarge(f"an answer of {int(declared) / (1 << 20):.0f} MiB (at most {max_bytes >> 20} MiB read)")
        body = bytearray()
        for chunk in response.iter_content(1 << 16):
            body += chunk
            if len(body) > max_bytes:
                response.close()
                raise _TooLarge(f"an answer of more than {max_bytes >> 20} MiB")
        response._content = bytes(body)  # what requests' own read would have set
        return response

    return read


class _Client:
    """prometheus-api-client behind a typed face: its results as plain lists, its failures as PrometheusError."""

    def __init__(self, url: str, timeout_s: float, retries: int, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.url = url.rstrip("/")
        # read=False: a read timeout is raised as itself, never retried (it would double the wait).
        retry = Retry(total=retries, read=False, backoff_factor=0.1, status_forcelist=(502, 503, 504),
                      raise_on_status=False)
        session = requests.Session()
        session.hooks["response"].append(_capped(max_answer_bytes))
        self._prom: Any = PrometheusConnect(url=self.url, retry=retry, timeout=timeout_s, session=session)

    def close(self) -> None:
        self._prom.close()

    def instant(self, what: str, expr: str, time_s: float, timeout_s: float,
                budget_s: float | None = None) -> list[Mapping[str, Any]]:
        """`timeout_s` is what is left for this request; `budget_s`, the deadline of the whole poll, is what an
        error reports (the caller's setting, not the remainder)."""
        params = {"time": f"{time_s:.3f}", "timeout": f"{timeout_s:.3f}"}
        return self._call(what, expr, timeout_s,
                          lambda: self._prom.custom_query(expr, params=params, timeout=timeout_s), budget_s)

    def range(self, what: str, expr: str, start_s: float, end_s: float, step_s: float,
              timeout_s: float) -> list[Mapping[str, Any]]:
        start = datetime.fromtimestamp(start_s, tz=UTC)
        end = datetime.fromtimestamp(end_s, tz=UTC)
        params = {"timeout": f"{timeout_s:.3f}"}
        return self._call(what, expr, timeout_s, lambda: self._prom.custom_query_range(
            expr, start_time=start, end_time=end, step=f"{step_s:g}", params=params, timeout=timeout_s))

    def _call(self, what: str, expr: str, timeout_s: float, request: Callable[[], Any],
              budget_s: float | None = None) -> list[Mapping[str, Any]]:
        said = timeout_s if budget_s is None else budget_s
        try:
            data = request()
        except requests.exceptions.Timeout:
            raise PrometheusError(f"Prometheus at {self.url} did not answer within {said:.3g} s "
                                  f"(query {what})") from None
        except requests.exceptions.ConnectionError as error:
            if isinstance(_root(error), TimeoutError):
                raise PrometheusError(f"Prometheus at {self.url} did not answer within {said:.3g} s "
                                      f"(query {what})") from None
            raise PrometheusError(f"Prometheus at {self.url} is unreachable (query {what}): "
                                  f"{_root_cause(error)}") from None
        except _TooLarge as error:
            raise PrometheusError(f"Prometheus at {self.url} sent {error} for query {what}: does it match far "
                                  "more series than hosts and VMs?") from None
        except PrometheusApiClientException as error:
            raise PrometheusError(f"Prometheus at {self.url} refused query {what} {expr!r}: "
                                  f"{_api_error(str(error))}") from None
        except KeyError:  # an HTTP 200 whose JSON has no data.result: a status "error", or no query API there
            raise PrometheusError(f"Prometheus at {self.url} answered query {what} without its data (status not "
                                  "success, or no Prometheus query API at this URL)") from None
        except (requests.exceptions.RequestException, ValueError, TypeError) as error:
            raise PrometheusError(f"Prometheus at {self.url} gave a bad answer to query {what}: "
                                  f"{type(error).__name__}: {str(error)[:300]}") from None
        if not isinstance(data, list) or not all(isinstance(e, Mapping) for e in data):
            raise PrometheusError(f"Prometheus at {self.url} answered query {what} with something other than a "
                                  f"vector or matrix: {str(data)[:200]}")
        return data


def _api_error(message: str) -> str:
    """'HTTP Status Code 400 (b'{"status":"error","errorType":"bad_data","error":"..."}')' -> 'HTTP 400 bad_data:
    ...'; a body that is not Prometheus's JSON (a proxy's page) -> 'HTTP 404: <its start>'."""
    found = re.fullmatch(r"HTTP Status Code (\d+) \((b'.*'|b\".*\")\)", message, re.DOTALL)
    if not found:
        return message[:400]
    status, body = found.group(1), ast.literal_eval(found.group(2)).decode(errors="replace")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        kind = answer.get("errorType")
        return f"HTTP {status}{f' {kind}' if isinstance(kind, str) else ''}: {answer['error'][:400]}"
    return f"HTTP {status}: {' '.join(body.split())[:200] or '(empty)'}"


def _root(error: BaseException) -> BaseException:
    seen = {id(error)}
    while error.__context__ is not None and id(error.__context__) not in seen:
        error = error.__context__
        seen.add(id(error))
    return error


def _root_cause(error: BaseException) -> str:
    root = _root(error)
    return f"{type(root).__name__}: {str(root)[:200]}"


class PrometheusSource:
    """Reads host and VM samples from Prometheus. Thread-safe; one poll at a time is enough (polls are atomic).

    `timeout_s` bounds a whole poll (its distinct queries run `workers` at a time under one deadline) and each
    history query. `clock` gives the unix time at which queries are evaluated and against which ages are
    measured. `retries` retries a refused connection or a 502/503/504 (never a timeout); the default is none,
    because the next poll is the retry. An answer larger than `max_answer_bytes` fails the poll unread.
    """

    def __init__(
        self,
        url: str,
        queries: PrometheusQueries | None = None,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        retries: int = 0,
        workers: int = 4,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive (got {timeout_s})")
        if workers < 1:
            raise ValueError(f"workers must be at least 1 (got {workers})")
        self.url = url
        self.queries = queries or PrometheusQueries()
        self._rendered = self.queries.rendered()
        self._timeout_s = timeout_s
        self._clock = clock
        self._client = _Client(url, timeout_s, retries, max_answer_bytes)
        self._lock = threading.Lock()
        self._health = SourceHealth(ok=False)
        self._last_good: PollResult | None = None
        self._skip_reasons: frozenset[str] = frozenset()
        # Even one worker runs in a thread: requests' timeout bounds each read, not the answer, so a server that
        # trickles its body would hold the caller far past the deadline; the caller waits for the thread instead.
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="prometheus-query")

    def close(self) -> None:
        # not waiting for a request still stuck on a slow server (it ends with its connection)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def health(self) -> SourceHealth:
        with self._lock:
            return self._health

    def poll(self, hosts: Collection[str], vms: Collection[str]) -> PollResult:
        """The newest samples of the given hosts and VMs. Never raises for an unreachable or slow server: the
        last good state (restricted to the given hosts and VMs) is returned with its age and a failing health."""
        now = self._clock()
        hosts, vms = frozenset(hosts), frozenset(vms)
        try:
            results, freshness, timings = self._fetch(now)
        except PrometheusError as error:
            return self._failed(now, str(error), hosts, vms)
        converted = convert(results, freshness, self.queries, hosts, vms, now)
        with self._lock:
            failures = self._health.consecutive_failures
            self._health = SourceHealth(True, now, self._health.last_error, 0)
            result = PollResult(converted.host_samples, converted.vm_samples, converted.skipped, self._health,
                                converted.missing, now, 0.0, timings)
            self._last_good = result
            # Said once while the same reasons recur every poll (the counts are in the metrics), again when they change.
            reasons, self._skip_reasons = self._skip_reasons, frozenset(converted.skipped)
        if failures:
            log.info("prometheus answers again", extra={"failures": failures})
        if converted.skipped:
            log.log(logging.INFO if frozenset(converted.skipped) != reasons else logging.DEBUG,
                    "prometheus series skipped", extra={"skipped": converted.skipped})
        return result

    def _failed(self, now: float, message: str, hosts: frozenset[str], vms: frozenset[str]) -> PollResult:
        with self._lock:
            previous = self._health
            self._health = SourceHealth(False, previous.last_success_s, message, previous.consecutive_failures + 1)
            health, last = self._health, self._last_good
        # A warning when the outage starts or its cause changes, not at every poll while it lasts.
        repeated = previous.consecutive_failures and previous.last_error == message
        log.log(logging.DEBUG if repeated else logging.WARNING, "prometheus poll failed",
                extra={"error": message, "failures": health.consecutive_failures})
        if last is None or last.as_of_s is None:
            return PollResult([], [], {}, health)
        return PollResult(
            [s for s in last.host_samples if s.host_id in hosts],
            [s for s in last.vm_samples if s.vm_id in vms],
            {}, health, dict(last.missing), last.as_of_s, max(0.0, now - last.as_of_s),
        )

    def _fetch(
        self, now: float
    ) -> tuple[dict[str, list[Mapping[str, Any]]], dict[str, list[Mapping[str, Any]]], dict[str, float]]:
        deadline = time.monotonic() + self._timeout_s
        timings: dict[str, float] = {}
        # Each distinct PromQL runs once (several metrics may share a freshness query).
        wanted: dict[str, str] = {}
        for name, query in self._rendered.items():
            wanted.setdefault(query.expr, name)
            if query.freshness:
                wanted.setdefault(query.freshness, f"{name}.freshness")

        def run(expr: str, what: str) -> list[Mapping[str, Any]]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PrometheusError(f"Prometheus at {self._client.url} did not answer within "
                                      f"{self._timeout_s:.3g} s (poll deadline passed before query {what})")
            started = time.perf_counter()
            answer = self._client.instant(what, expr, now, remaining, self._timeout_s)
            timings[what] = time.perf_counter() - started
            return answer

        answers: dict[str, list[Mapping[str, Any]]] = {}
        futures = {expr: self._pool.submit(run, expr, what) for expr, what in wanted.items()}
        try:
            for expr, future in futures.items():
                answers[expr] = self._answer(future, deadline, wanted[expr])
        finally:
            for future in futures.values():
                future.cancel()
        results = {name: answers[query.expr] for name, query in self._rendered.items()}
        freshness = {name: answers[query.freshness] for name, query in self._rendered.items() if query.freshness}
        return results, freshness, timings

    def history(
        self, vm_id: str, metric: str, start_s: float, end_s: float, step_s: float
    ) -> list[tuple[float, float]]:
        """(time, value) points of one VM metric ("cpu_utilization", "memory_used_mib" or "dirty_rate_mib_s",
        in domain units) from `start_s` to `end_s` every `step_s` seconds: the feature windows of a forecaster.
        Points where the metric was not measured are absent. Raises PrometheusError if the server fails."""
        name = VM_HISTORY_METRICS.get(metric)
        if name is None or name not in self._rendered:
            raise ValueError(f"metric must be one of {sorted(VM_HISTORY_METRICS)} (and enabled), got {metric!r}")
        if not (math.isfinite(start_s) and math.isfinite(end_s) and start_s <= end_s):
            raise ValueError(f"need start_s <= end_s (got {start_s}, {end_s})")
        if not step_s > 0:
            raise ValueError(f"step_s must be positive (got {step_s})")
        if (end_s - start_s) / step_s + 1 > MAX_RANGE_POINTS:
            raise ValueError(f"at most {MAX_RANGE_POINTS} points per query: widen step_s or split the range")
        label = self._rendered[name].label
        raw = self.queries.vm_label_value(vm_id)
        # `$select` narrows every selector to the VM (the cost of the query no longer grows with the cluster);
        # `and on(label)` a one-series vector carrying the label keeps only its series whatever the expression.
        query = self.queries.render(name, select=f"{label}={promql_string(raw)}")
        value = promql_string(raw.replace("$", "$$"))
        expr = f'({query.expr}) and on({label}) label_replace(vector(1), "{label}", {value}, "", "")'
        what = f"history {name}"
        future = self._pool.submit(self._client.range, what, expr, start_s, end_s, step_s, self._timeout_s)
        try:
            result = self._answer(future, time.monotonic() + self._timeout_s, what)
        finally:
            future.cancel()
        # Prometheus answers at the steps asked; a point outside them (a proxy's cache, a wrong clock) is not
        # this window's.
        return [(t, v) for t, v in convert_range(name, result, self.queries) if start_s <= t <= end_s]

    def _answer(self, future: Future[list[Mapping[str, Any]]], deadline: float,
                what: str) -> list[Mapping[str, Any]]:
        """A query's answer if it is complete by the deadline (monotonic clock), else PrometheusError."""
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise PrometheusError(f"Prometheus at {self._client.url} did not answer within {self._timeout_s:.3g} s "
                                  f"(query {what})") from None


