"""Measure what a shaped link (advisor/lab/shaping.py) does to loopback TCP: a stream into the shaped port block,
a stream to another port, and small request/response round trips (as libvirt's RPC or a Prometheus scrape make)
to another port while the shaped stream runs. Without the link, then with it, alternating.

    sudo .venv/bin/python -m benchmarks.lab_shaped_link [--mib-s 16] [--seconds 3] [--repeat 3]

Runs in a network namespace of its own (ip netns), whose lo it shapes: the machine's lo, and any lab or
collection using it, are left alone. Needs root, ip and tc (iproute2).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from advisor.lab import shaping
from advisor.lab.daemon import HostSpec

OTHER_PORT = 16509  # libvirt's TCP port: not in any migration block
MIB = 1024 * 1024


def _server(port: int, echo: bool,
            received: list[tuple[float, int]] | None = None) -> tuple[socket.socket, threading.Thread]:
    """A one-connection server that echoes, or records (time, bytes) of what it receives in `received`."""
    srv = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(1 << 20):
                if echo:
                    conn.sendall(data)
                elif received is not None:
                    received.append((time.monotonic(), len(data)))
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv, thread


def stream_mib_s(port: int, seconds: float) -> float:
    """MiB/s one TCP stream delivers to `port` within `seconds` of its start (counted where it is received: what
    the sender's socket buffer holds at the end is not delivered)."""
    received: list[tuple[float, int]] = []
    srv, thread = _server(port, echo=False, received=received)
    chunk = b"\0" * (1 << 16)
    with socket.create_connection(("127.0.0.1", port)) as conn:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            conn.send(chunk)
    thread.join()
    srv.close()
    end = started + seconds
    return sum(n for t, n in received if t <= end) / seconds / MIB


def round_trip_us(port: int, count: int = 2000) -> float:
    """Median microseconds of a 200-byte request echoed back."""
    srv, thread = _server(port, echo=True)
    times = []
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            conn.sendall(b"x" * 200)
            got = 0
            while got < 200:
                got += len(conn.recv(200 - got))
            times.append((time.perf_counter() - started) * 1e6)
    thread.join()
    srv.close()
    return statistics.median(times)


def measure(low_port: int, seconds: float) -> dict[str, float]:
    into_block = stream_mib_s(low_port + 3, seconds)
    other = stream_mib_s(OTHER_PORT, seconds)
    idle_rtt = round_trip_us(OTHER_PORT + 1)
    # round trips while a stream into the block runs beside them
    background = threading.Thread(target=stream_mib_s, args=(low_port + 5, seconds), daemon=True)
    background.start()
    time.sleep(0.2)
    busy_rtt = round_trip_us(OTHER_PORT + 2)
    background.join()
    return {"into the block, MiB/s": into_block, "to another port, MiB/s": other, "round trip, us": idle_rtt,
            "round trip beside the block's stream, us": busy_rtt}


def inside(args: argparse.Namespace) -> None:
    host = HostSpec("bench", Path("/nonexistent"), Path("/nonexistent"), str(uuid.uuid4()))
    low = host.migration_ports[0]
    print(f"port block {low}-{low + 15}, link {args.mib_s} MiB/s, {args.seconds} s streams, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, dict[str, list[float]]] = {"loopback": {}, "shaped": {}}
    for _ in range(args.repeat):
        for case in ("loopback", "shaped"):
            context = shaping.shaped_link(host, args.mib_s) if case == "shaped" else contextlib.nullcontext()
            with context:
                for name, value in measure(low, args.seconds).items():
                    results[case].setdefault(name, []).append(value)
    names = list(results["loopback"])
    print(f"{'median of ' + str(args.repeat):<42} {'loopback':>10} {'shaped':>10}")
    for name in names:
        print(f"{name:<42} {statistics.median(results['loopback'][name]):>10.1f} "
              f"{statistics.median(results['shaped'][name]):>10.1f}")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    name = f"advisor-shaping-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lab_shaped_link", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib-s", type=float, default=16.0, help="the link's rate, MiB/s (default 16)")
    p.add_argument("--seconds", type=float, default=3.0, help="length of each stream (default 3)")
    p.add_argument("--repeat", type=int, default=3, help="alternations of loopback and shaped (default 3)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # already in the namespace
    args = p.parse_args(argv)
    if args.inside:
        inside(args)
        return 0
    if os.geteuid() != 0:
        p.error("needs root (a network namespace and tc)")
    with namespace() as name:
        own = list(argv if argv is not None else sys.argv[1:])
        return subprocess.run(["ip", "netns", "exec", name, sys.executable, "-m", "benchmarks.lab_shaped_link",
                               "--inside", *own], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
