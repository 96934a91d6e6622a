"""Digests of varied served answers on a frozen clock (`bench_predict.py --answers N`): two versions of the code that
print equal digests answered every request alike, byte for byte.

A small cluster made to take every path a prediction can: hosts of the learned model's profiles, of a profile never
calibrated and of none, links of several speeds, TLS on some; VMs with local disks (their writes measured or not),
asking for cold, forbidding post-copy; samples over a minute (memory in use, dirty rates, working sets on some) so
that dirty-rate forecasts and bursts are served. Then N requests, PredictMigrationCost and RecommendTarget (dry
runs) in turn, with targets, techniques, what-if overrides and objectives drawn at random, and a rebalance, a
consolidation and a drain as dry runs. Each answer is serialised deterministically, ids masked.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import cast

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from advisor.api import servicers
from advisor.api.v1 import advisor_pb2 as pb
from tests.support import local_advisor

NO_CONTEXT = cast(grpc.ServicerContext, None)  # these servicers read nothing of their call's context
NOW_S = 1_796_000_000.0
HOSTS, VMS = 40, 400
PROFILES = ("", "snu", "lab", "rack-z")  # "rack-z": never calibrated
IDS = re.compile(r"[0-9a-f]{12,}")


def inventory(rng: random.Random) -> pb.PushInventoryRequest:
    request = pb.PushInventoryRequest()
    for h in range(HOSTS):
        profile = PROFILES[h % len(PROFILES)]
        request.hosts.add(id=f"h{h:02d}", cpu_cores=64, memory_mib=512 * 1024, cpu_model="Cascadelake-Server",
                          network_bandwidth_mib_s=rng.choice([1180.0, 2360.0, 590.0]), migration_tls=h % 3 == 0,
                          labels={"advisor.profile": profile} if profile else {}, local_disk_free_mib=10**7)
    for v in range(VMS):
        vm = request.vms.add(id=f"v{v:03d}", host_id=f"h{v % HOSTS:02d}", memory_mib=rng.choice([1024, 4096, 16384]),
                             vcpus=rng.choice([1, 2, 4]), postcopy_forbidden=v % 11 == 0,
                             labels={"advisor.technique": "cold"} if v % 13 == 0 else {})
        if v % 5 == 0:
            used = rng.choice([2048, 20480])
            vm.disks.add(target="vda", size_mib=used * 2, used_mib=used, shared=False,
                         **({"write_rate_mib_s": rng.uniform(0.0, 30.0)} if v % 10 == 0 else {}))
    return request


def samples(rng: random.Random) -> pb.PushSamplesRequest:
    request = pb.PushSamplesRequest()
    for k in range(8):  # every 8 s over the last minute
        at = {"seconds": int(NOW_S - 64 + 8 * k)}
        for h in range(HOSTS):
            request.host_samples.add(host_id=f"h{h:02d}", time=at, cpu_utilization_ratio=rng.uniform(0.1, 0.95),
                                     network_tx_mib_s=rng.uniform(0, 200), network_rx_mib_s=rng.uniform(0, 200))
        for v in range(VMS):
            if v % 17 == 0:
                continue  # never sampled: its dirty rate unknown
            sample = request.vm_samples.add(vm_id=f"v{v:03d}", time=at, cpu_utilization_ratio=rng.random(),
                                            dirty_rate_mib_s=rng.expovariate(1 / (5 + v % 60)),
                                            memory_used_mib=rng.uniform(300, 900))
            if v % 3 == 0:
                sample.working_set_mib = rng.uniform(10, 600)
    return request


def objective(rng: random.Random) -> pb.Objective:
    out = pb.Objective()
    if rng.random() < 0.7:
        out.max_downtime_ms = rng.choice([50.0, 300.0, 1000.0, 20000.0])
    if rng.random() < 0.3:
        out.deadline_ms = rng.choice([5000.0, 60000.0])
    out.minimize_transferred = rng.random() < 0.2
    return out


def prediction(rng: random.Random) -> pb.PredictMigrationCostRequest:
    request = pb.PredictMigrationCostRequest(vm_id=f"v{rng.randrange(VMS):03d}")
    if rng.random() < 0.5:
        request.target_host_id = f"h{rng.randrange(HOSTS):02d}"
    if rng.random() < 0.3:
        request.techniques.extend(rng.sample(range(1, 7), rng.randint(1, 3)))
    for field, values in (("dirty_rate_mib_s", (0.0, 5.0, 80.0, 400.0)), ("bandwidth_mib_s", (50.0, 1180.0)),
                          ("max_bandwidth_mib_s", (30.0, 300.0)), ("max_downtime_ms", (20.0, 300.0, 5000.0))):
        if rng.random() < 0.2:
            setattr(request, field, rng.choice(values))
    return request


def answer_text(answer: object) -> bytes:
    data = cast(pb.PredictMigrationCostResponse, answer).SerializeToString(deterministic=True)
    return IDS.sub("ID", data.decode("latin-1")).encode("latin-1")


def answers(n: int, seed: int) -> None:
    rng = random.Random(seed)
    digests = {"PredictMigrationCost": hashlib.sha256(), "RecommendTarget": hashlib.sha256(),
               "PlanCluster": hashlib.sha256()}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="advisor-answers-") as work, \
            local_advisor(Path(work), clock=lambda: NOW_S) as app:
        servicers.InventoryServicer(app.usecases, app.metrics).PushInventory(inventory(rng), NO_CONTEXT)
        servicers.TelemetryServicer(app.usecases, app.metrics).PushSamples(samples(rng), NO_CONTEXT)
        predicting = servicers.PredictionServicer(app.usecases, app.metrics)
        planning = servicers.RecommendationServicer(app.usecases, app.metrics)
        for k in range(n):
            name = "RecommendTarget" if k % 2 else "PredictMigrationCost"
            try:
                if k % 2:
                    name, answer = "RecommendTarget", planning.RecommendTarget(pb.RecommendTargetRequest(
                        vm_id=f"v{rng.randrange(VMS):03d}", objective=objective(rng), dry_run=True), NO_CONTEXT)
                else:
                    name, answer = "PredictMigrationCost", predicting.PredictMigrationCost(prediction(rng), NO_CONTEXT)
                digests[name].update(answer_text(answer))
            except Exception as error:  # a refusal is an answer too
                errors += 1
                digests[name].update(f"{type(error).__name__}: {error}".encode())
        for goal, host in ((pb.CLUSTER_GOAL_REBALANCE, ""), (pb.CLUSTER_GOAL_CONSOLIDATE, ""),
                           (pb.CLUSTER_GOAL_DRAIN, "h01")):
            plan = planning.PlanCluster(pb.PlanClusterRequest(goal=goal, host_id=host, dry_run=True), NO_CONTEXT)
            digests["PlanCluster"].update(answer_text(plan))
            print(f"  plan {pb.ClusterGoal.Name(goal)}: {len(plan.moves)} moves", flush=True)
    print(f"{n} answers ({errors} refused) on {HOSTS} hosts, {VMS} VMs: "
          + ", ".join(f"{name} {d.hexdigest()[:16]}" for name, d in digests.items()))
