"""Benchmark: what the gRPC metrics interceptor (advisor/api/grpc_metrics.py) adds to a call.

Two in-process servers on loopback answer the same trivial unary method, one with the interceptor in front (as
`advisor serve` has it), one without; rounds of calls alternate between them so that a busy machine slows both
alike. Prints each one's median time per call and their difference; asserts nothing about speed.

    .venv/bin/python benchmarks/bench_grpc_metrics.py [--calls 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent import futures
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from advisor.api.grpc_metrics import GrpcMetrics
from advisor.metrics import AdvisorMetrics

METHOD = "/bench.Echo/Call"


def serve(interceptors: list[Any]) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=interceptors)
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Call": echo}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def per_call_us(port: int, calls: int) -> float:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        call(b"warm", timeout=5)
        started = time.perf_counter()
        for _ in range(calls):
            call(b"x" * 64, timeout=5)
        return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    plain, plain_port = serve([])
    metrics = AdvisorMetrics(CollectorRegistry())
    counted, counted_port = serve([GrpcMetrics(metrics)])
    without, with_ = [], []
    for _ in range(args.rounds):
        without.append(per_call_us(plain_port, args.calls))
        with_.append(per_call_us(counted_port, args.calls))
    plain.stop(None)
    counted.stop(None)
    a, b = statistics.median(without), statistics.median(with_)
    handled = metrics.registry.get_sample_value("grpc_server_handled_total", {
        "grpc_type": "unary", "grpc_service": "bench.Echo", "grpc_method": "Call", "grpc_code": "OK"})
    print(f"{args.rounds} rounds of {args.calls} unary calls on loopback, alternating")
    print(f"without the interceptor: median {a:.0f} us per call (rounds {min(without):.0f}-{max(without):.0f})")
    print(f"with the interceptor:    median {b:.0f} us per call (rounds {min(with_):.0f}-{max(with_):.0f})")
    print(f"difference: {b - a:+.0f} us per call ({b / a:.2f}x); calls counted: {handled:.0f}")


if __name__ == "__main__":
    main()
