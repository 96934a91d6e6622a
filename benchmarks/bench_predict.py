"""Benchmark: PredictMigrationCost, the trees inside it and the gRPC call around it.

    .venv/bin/python benchmarks/bench_predict.py [--hosts 1000] [--vms 20000] [--calls 500] [--models models]
                                                 [--skip-trees] [--in-process [--profile]] [--answers N]

First each tree model of the active cost and dirty-rate versions, as LightGBM's predictor and as the compiled
loop that serves it (advisor.ml.trees), on the 10 rows of one question (five techniques at the expected and at the
burst dirty rate; best of 5) and on 100,000 rows (a plan's batch); the two must agree exactly. Then `advisor
serve` in its own process with bench_api's synthetic cluster and samples, PredictMigrationCost timed over loopback
gRPC (p50 / p99), beside two floors: GetAutomation (an authenticated call doing little: the token check, one read
of the settings' table) and the health check (gRPC and the metrics interceptor, no token). With
`--in-process`, the same calls without the network, in this process: the use case alone, and each call through the
server's interceptors and servicer (metrics, access, errors; a stand-in for gRPC's context), median and best, and
the CPU time of a call (this thread's, median and mean), which on a loaded machine say more than the loopback
figures; with `--profile`, then the served call under cProfile over as many calls again, its functions by their
own time. With `--answers N`, instead, N varied PredictMigrationCost and RecommendTarget requests (targets,
techniques, what-if overrides, objectives; hosts of the learned, a calibrated-less and the lab profile, VMs with
local disks, asking for cold, with working sets and dirty-rate histories) and a few plans, in process on a frozen
clock, and a digest of every answer: two versions of the code printing equal digests answered alike, byte for
byte. Prints figures; asserts nothing about speed (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench_api import cluster, sample_batches
from bench_predict_answers import answers
from grpc_health.v1 import health_pb2, health_pb2_grpc

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.lab.procs import free_port


def best_us(call: Callable[[], object], repeat: int = 5, number: int = 50) -> float:
    call()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e6


def trees(models: Path) -> None:
    import lightgbm as lgb
    import numpy as np

    from advisor.ml.registry import read_active
    from advisor.ml.trees import Forest

    rng = np.random.default_rng(0)
    print(f"{'model':34s} {'trees':>5s}  10 rows: LightGBM  compiled   100,000 rows: LightGBM  compiled  same")
    for kind in ("cost", "dirty_rate"):
        version = models / kind / read_active(models / kind)
        for path in sorted(version.glob("*.txt")):
            booster, forest = lgb.Booster(model_file=str(path)), Forest.from_file(path)
            x = rng.normal(size=(100_000, forest.num_feature()))
            x[:, 0] = rng.integers(0, 5, len(x))  # technique code
            x[rng.random(x.shape) < 0.05] = np.nan
            same = np.array_equal(booster.predict(x), forest.predict(x))
            few = (best_us(partial(booster.predict, x[:10], num_threads=1)), best_us(partial(forest.predict, x[:10])))
            many = (best_us(partial(booster.predict, x), 1, 1) / 1000, best_us(partial(forest.predict, x), 1, 1) / 1000)
            print(f"{kind + '/' + path.name:34s} {forest.num_trees():5d}  {few[0]:13.1f} us {few[1]:6.1f} us"
                  f"  {many[0]:17.1f} ms {many[1]:6.1f} ms  {'yes' if same else 'NO'}")


def served(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    port = free_port()
    data = tempfile.mkdtemp(prefix="advisor-bench-")
    secret = subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", "--data-dir", data, "--name",
                             "bench", "--role", "scheduler"], capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen(
        [sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
         "--metrics-listen", "", "--log-level", "warning"], env=os.environ.copy())
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=secret, timeout_s=300) as client:
            t0 = time.perf_counter()
            client.wait_ready(60)
            ready_s = time.perf_counter() - t0
            client.push_inventory(cluster(args.hosts, args.vms, rng))
            client.stream_samples(sample_batches(args.hosts, args.vms, 10, 5000, rng))
            vm_ids = [f"vm-{rng.randrange(args.vms):05d}" for _ in range(args.calls)]
            for vm_id in vm_ids[:20]:  # warm up
                client.predict(pb.PredictMigrationCostRequest(vm_id=vm_id))
            health = health_pb2_grpc.HealthStub(client.channel)  # type: ignore[no-untyped-call]
            floor, bare, predict = [], [], []
            for vm_id in vm_ids:
                t0 = time.perf_counter()
                client.automation_settings()
                floor.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                health.Check(health_pb2.HealthCheckRequest(), timeout=30)
                bare.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                answer = client.predict(pb.PredictMigrationCostRequest(vm_id=vm_id))
                predict.append((time.perf_counter() - t0) * 1000)
            model = answer.costs[0].model
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    print(f"\ncluster: {args.hosts} hosts, {args.vms} VMs; cost model {model.name} {model.version}; {os.cpu_count()} "
          f"CPUs; server ready in {ready_s:.1f} s; {args.calls} calls each, in turns, over loopback gRPC")
    print(f"PredictMigrationCost latency:   p50 {pct(predict, 50):6.2f} ms   p99 {pct(predict, 99):6.2f} ms  "
          f"({len(answer.costs)} techniques)")
    print(f"GetAutomation (call floor):     p50 {pct(floor, 50):6.2f} ms   p99 {pct(floor, 99):6.2f} ms")
    print(f"Health Check (no token):        p50 {pct(bare, 50):6.2f} ms   p99 {pct(bare, 99):6.2f} ms")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


class StandInContext:
    """What the interceptors and the servicer read of gRPC's context, for calls made without a server."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def is_active(self) -> bool:
        return True

    def code(self) -> None:
        return None

    def details(self) -> None:
        return None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def abort(self, code: object, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def in_process(args: argparse.Namespace) -> None:
    import grpc

    from advisor.api import servicers
    from advisor.api.errors import ErrorInterceptor
    from advisor.api.grpc_metrics import GrpcMetrics
    from advisor.api.server import SERVICE_NAMES
    from advisor.app import build_app
    from advisor.config import Settings
    from advisor.domain.access import Role

    rng = random.Random(args.seed)
    app = build_app(Settings(listen="127.0.0.1:0", metrics_listen="", dirty_rate_interval_s=0.0,
                             data_dir=Path(tempfile.mkdtemp(prefix="advisor-bench-")), models_dir=args.models))
    app.start()
    try:
        assert app.server is not None
        secret = app.tokens.renew("bench", Role.SCHEDULER)
        with AdvisorClient(f"127.0.0.1:{app.server.port}", token=secret, timeout_s=300) as client:
            client.push_inventory(cluster(args.hosts, args.vms, rng))
            client.stream_samples(sample_batches(args.hosts, args.vms, 10, 5000, rng))
        # The interceptors in the server's order (advisor.api.server), around the servicers' own methods.
        interceptors = [GrpcMetrics(app.metrics), app.access, ErrorInterceptor(SERVICE_NAMES)]
        methods = {  # made once, as the server registers them
            "/advisor.api.v1.PredictionService/PredictMigrationCost": grpc.unary_unary_rpc_method_handler(
                servicers.PredictionServicer(app.usecases, app.metrics).PredictMigrationCost),
            "/advisor.api.v1.AutomationService/GetAutomation": grpc.unary_unary_rpc_method_handler(
                servicers.AutomationServicer(app.usecases, app.metrics).GetAutomation),
        }

        def handler(method: str) -> Any:
            def at(i: int, details: grpc.HandlerCallDetails) -> Any:
                if i == len(interceptors):
                    return methods[details.method]
                return interceptors[i].intercept_service(partial(at, i + 1), details)

            details = type("Details", (), {"method": method, "invocation_metadata": ()})()
            return at(0, details)

        context = StandInContext(secret)

        def served(method: str, request: object) -> None:
            handler(method).unary_unary(request, context)

        vm_ids = [f"vm-{rng.randrange(args.vms):05d}" for _ in range(args.calls)]
        timed: dict[str, Callable[[str], object]] = {
            "PredictMigrationCost, the use case": app.usecases.advice.predict_cost,
            "PredictMigrationCost, served": lambda vm: served(
                "/advisor.api.v1.PredictionService/PredictMigrationCost", pb.PredictMigrationCostRequest(vm_id=vm)),
            "GetAutomation, served": lambda vm: served("/advisor.api.v1.AutomationService/GetAutomation",
                                                       pb.GetAutomationRequest()),
        }
        times: dict[str, list[float]] = {name: [] for name in timed}
        cpu: dict[str, list[float]] = {name: [] for name in timed}
        for vm_id in vm_ids[:20]:  # warm up
            for call in timed.values():
                call(vm_id)
        for vm_id in vm_ids:
            for name, call in timed.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                call(vm_id)
                cpu[name].append((time.thread_time() - c0) * 1000)
                times[name].append((time.perf_counter() - t0) * 1000)
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: [timed["PredictMigrationCost, served"](vm_id) for vm_id in vm_ids])
    finally:
        app.stop()
    print(f"\nin process, no network: {args.hosts} hosts, {args.vms} VMs; {args.calls} calls each, in turn")
    for name, values in times.items():
        print(f"{name:38s} median {statistics.median(values):6.3f} ms   best {min(values):6.3f} ms   CPU median "
              f"{statistics.median(cpu[name]):6.3f} ms, mean {statistics.mean(cpu[name]):6.3f} ms")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.profile:
        print(f"\nPredictMigrationCost, served, under cProfile ({args.calls} calls; times include its overhead):")
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    parser.add_argument("--skip-trees", action="store_true", help="only the served calls")
    parser.add_argument("--in-process", action="store_true", help="the calls without the network, in this process")
    parser.add_argument("--profile", action="store_true", help="with --in-process: where a served call's time goes")
    parser.add_argument("--answers", type=int, default=0, metavar="N",
                        help="digests of N varied answers on a frozen clock (nothing timed)")
    args = parser.parse_args()
    if args.answers:
        answers(args.answers, args.seed)
        return
    if not args.skip_trees:
        trees(args.models)
    if args.in_process:
        in_process(args)
    else:
        served(args)


if __name__ == "__main__":
    main()
