"""Build the gRPC server: the advisor's services, standard health checking and reflection (so grpcurl works)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from advisor.api import reflection, servicers
from advisor.api.auth import AccessInterceptor, CallLimits
from advisor.api.errors import ErrorInterceptor, MalformedRequest
from advisor.api.grpc_metrics import GrpcMetrics
from advisor.api.handlers import FACTORIES
from advisor.api.sample_messages import samples_parser
from advisor.api.servicers import StreamLimits
from advisor.api.urgency import UrgentCalls
from advisor.api.v1 import advisor_pb2 as pb
from advisor.metrics import AdvisorMetrics
from advisor.usecases.bundle import UseCases

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


def _lenient_parser(cls: type[Message], limit_bytes: int) -> Callable[[bytes], Message | MalformedRequest]:
    name = cls.DESCRIPTOR.full_name

    def parse(data: bytes) -> Message | MalformedRequest:
        if len(data) > limit_bytes:
            return MalformedRequest(name, f"{len(data)} bytes exceed the limit of {limit_bytes} bytes")
        try:
            return cls.FromString(data)
        except DecodeError as error:
            return MalformedRequest(name, str(error) or "undecodable bytes")

    return parse


def _register(server: grpc.Server, servicer: Any, service: ServiceDescriptor, limit_bytes: int) -> None:
    """Register a servicer from the service descriptor, parsing requests leniently (see MalformedRequest)."""
    handlers = {}
    for method in service.methods:
        request_cls = getattr(pb, method.input_type.name)
        response_cls = getattr(pb, method.output_type.name)
        factory = FACTORIES[(method.client_streaming, method.server_streaming)]
        parse = _lenient_parser(request_cls, limit_bytes)
        if request_cls is pb.PushSamplesRequest:  # tens of thousands of samples a second: VM samples as columns
            parse = samples_parser(parse, limit_bytes)
        handlers[method.name] = factory(
            getattr(servicer, method.name),
            request_deserializer=parse,
            response_serializer=response_cls.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))


@dataclass(frozen=True)
class Tls:
    """PEM bytes of the server's certificate and key; with `client_ca`, clients must present a certificate it
    signed (mutual TLS)."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


# Threads beyond the limited places: health checks are never counted against the limits, and always find one.
HEALTH_RESERVE = 4


def start_server(
    usecases: UseCases,
    metrics: AdvisorMetrics,
    *,
    listen: str,
    access: AccessInterceptor,
    limits: CallLimits,
    tls: Tls | None = None,
    max_message_mib: int = 16,
    streams: StreamLimits = StreamLimits(),  # noqa: B008 - frozen, so one shared default is safe
) -> RunningServer:
    # Messages up to the limit are parsed; larger ones up to 4x get INVALID_ARGUMENT saying so; beyond that
    # gRPC's transport answers RESOURCE_EXHAUSTED without reading them.
    limit = max_message_mib << 20
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.unary + limits.streams + HEALTH_RESERVE,
                                   thread_name_prefix="grpc"),
        # Urgent calls marked first (bulk work gives way to them); the metrics next, so that every call is counted,
        # refused ones too; then access: a refused call never reaches the error interceptor.
        interceptors=[UrgentCalls(), GrpcMetrics(metrics), access, ErrorInterceptor(SERVICE_NAMES)],
        options=[("grpc.max_receive_message_length", 4 * limit), ("grpc.max_send_message_length", 4 * limit),
                 # One server per port: with SO_REUSEPORT a second server would silently take half the calls.
                 ("grpc.so_reuseport", 0)],
    )
    for name, servicer_cls in (
        ("InventoryService", servicers.InventoryServicer),
        ("TelemetryService", servicers.TelemetryServicer),
        ("PredictionService", servicers.PredictionServicer),
        ("RecommendationService", servicers.RecommendationServicer),
        ("MigrationService", servicers.MigrationServicer),
        ("AutomationService", servicers.AutomationServicer),
    ):
        _register(server, servicer_cls(usecases, metrics, streams), pb.DESCRIPTOR.services_by_name[name], limit)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=tls.client_ca is not None)
            port = server.add_secure_port(listen, credentials)
    except RuntimeError as error:  # grpc raises RuntimeError when it cannot bind
        raise OSError(f"cannot listen on {listen}: {error}") from None
    if port == 0:
        raise OSError(f"cannot listen on {listen} (in use, or not an address of this machine)")
    server.start()
    return RunningServer(server, port, health_servicer)
