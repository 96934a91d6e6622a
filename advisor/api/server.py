"""Build the gRPC server: the advisor's services, standard health checking and reflection (so grpcurl works)."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from advisor.api import servicers
from advisor.api.v1 import advisor_pb2 as pb
from advisor.api.v1 import advisor_pb2_grpc as pb_grpc
from advisor.metrics import AdvisorMetrics
from advisor.service import AdvisorService

SERVICE_NAMES = tuple(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, finish calls in flight (up to `grace_s`), then stop."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def start_server(
    service: AdvisorService,
    metrics: AdvisorMetrics,
    *,
    listen: str,
    max_workers: int = 8,
    max_message_mib: int = 16,
) -> RunningServer:
    limit = max_message_mib << 20
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
    )
    pb_grpc.add_InventoryServiceServicer_to_server(servicers.InventoryServicer(service, metrics), server)
    pb_grpc.add_TelemetryServiceServicer_to_server(servicers.TelemetryServicer(service, metrics), server)
    pb_grpc.add_PredictionServiceServicer_to_server(servicers.PredictionServicer(service, metrics), server)
    pb_grpc.add_RecommendationServiceServicer_to_server(servicers.RecommendationServicer(service, metrics), server)
    pb_grpc.add_MigrationServiceServicer_to_server(servicers.MigrationServicer(service, metrics), server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    server.start()
    return RunningServer(server, port, health_servicer)
