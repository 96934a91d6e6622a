"""The server interceptor every call passes first: who is calling, may they, is there room, and the audit trail.

For each call, before the servicer sees the request (and so before any lookup or validation):

1. gRPC health checking is open to anyone; every other call needs a caller: a bearer token in the
   `authorization` metadata (`Bearer adv_...`), or a client certificate whose subject is mapped to a role (mutual
   TLS). A missing, malformed, unknown or revoked token is UNAUTHENTICATED. Reflection needs any valid caller.
2. The caller's role must allow the call (advisor.domain.access), else PERMISSION_DENIED.
3. Calls run under a bound: streams and unary calls each have their own number of places, and health checks
   are never counted, so idle streams can neither starve unary calls nor delay a health check. A call with no
   place gets RESOURCE_EXHAUSTED at once rather than queueing behind the others.
4. The caller is made known to the servicer (`current_caller()`): what it records as the actor is the token's
   name, never a field of the request. Every refused call and every state-changing call is written to the audit
   trail and logged, with who, when, from where, what and how it ended.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from advisor.api.handlers import Behaviour, Rebuilt, ServerInterceptor, rebuilt
from advisor.domain.access import STATE_CHANGING, AuditEntry, AuditTrail, Caller, Role, TokenCheck, may_call
from advisor.metrics import AdvisorMetrics

log = logging.getLogger("advisor.audit")

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
REFLECTION_PREFIX = "/grpc.reflection."
# Request fields that name what a call is about, for the audit trail.
TARGET_FIELDS = ("id", "recommendation_id", "operation_id", "vm_id", "host_id")

_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def current_caller() -> Caller:
    """The authenticated caller of the call being served (set by the interceptor)."""
    caller = _caller.get()
    if caller is None:  # only a servicer called outside the interceptor gets here
        raise RuntimeError("no authenticated caller: the call did not pass the access interceptor")
    return caller


@dataclass(frozen=True)
class CallLimits:
    """Places for calls in flight: unary calls and streams apart; health checks are not counted."""

    unary: int = 48
    streams: int = 8


class AccessInterceptor(ServerInterceptor):
    def __init__(
        self,
        tokens: TokenCheck,
        audit: AuditTrail,
        *,
        certificate_roles: Mapping[str, Role] | None = None,
        limits: CallLimits = CallLimits(),
        clock: Callable[[], float] = time.time,
        metrics: AdvisorMetrics | None = None,
    ) -> None:
        self._tokens = tokens
        self._metrics = metrics
        self._audit = audit
        self._certificate_roles = dict(certificate_roles or {})
        self._places = {False: threading.BoundedSemaphore(limits.unary),
                        True: threading.BoundedSemaphore(limits.streams)}
        self._limits = limits
        self._clock = clock
        self._rebuilt = Rebuilt(self._rebuild)

    def drain(self, timeout_s: float) -> bool:
        """Wait, at most `timeout_s`, until no call is inside its handler or writing its audit entry, by taking
        every place (so none starts after); False if some call was still running then. gRPC's own stop does not
        wait for the handler of a call whose client has already given up: the store closed under such handlers
        and their audit entries were lost."""
        deadline = time.monotonic() + timeout_s
        for places, count in ((self._places[False], self._limits.unary), (self._places[True], self._limits.streams)):
            for _ in range(count):
                if not places.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        return None if handler is None else self._rebuilt(handler, details.method)

    def _rebuild(self, handler: Any, full: str) -> Any:
        if full.startswith(OPEN_PREFIXES):
            return handler
        method = full.rsplit(".", 1)[-1] if not full.startswith(REFLECTION_PREFIX) else "ServerReflection"
        streaming = handler.request_streaming or handler.response_streaming
        return rebuilt(handler, lambda behaviour: self._guard(behaviour, method, streaming,
                                                             full.startswith(REFLECTION_PREFIX)))

    # -- one call --------------------------------------------------------------------------------------------

    def _identify(self, context: grpc.ServicerContext) -> tuple[Caller | None, str]:
        """The caller, or None and why not."""
        headers = [value for key, value in context.invocation_metadata() or () if key == "authorization"]
        if len(headers) > 1:  # which one counts would be a guess, and a forged one beside a real one a trick
            return None, f"{len(headers)} authorization headers: send exactly one"
        header = headers[0] if headers else None
        if header is not None:
            scheme, _, token = str(header).partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None, "malformed authorization header (expected: Bearer TOKEN)"
            caller = self._tokens.authenticate(token.strip())
            return (caller, "") if caller is not None else (None, "unknown, revoked or malformed token")
        subject = _certificate_subject(context)
        if subject is not None:
            role = self._certificate_roles.get(subject)
            if role is None:
                return None, f"client certificate {subject[:80]!r} is mapped to no role"
            return Caller(subject, role, "certificate"), ""
        return None, "no credentials: send `authorization: Bearer TOKEN`"

    def _guard(self, behaviour: Behaviour, method: str, streaming: bool, reflection: bool) -> Behaviour:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            caller, why = self._identify(context)
            if caller is None:
                self._refuse(context, method, None, grpc.StatusCode.UNAUTHENTICATED, why, request)
            assert caller is not None
            if not reflection and not may_call(caller.role, method):
                self._refuse(context, method, caller, grpc.StatusCode.PERMISSION_DENIED,
                             f"{caller.name} ({caller.role.label}) may not call {method}", request)
            places = self._places[streaming]
            if not places.acquire(blocking=False):
                self._refuse(context, method, caller, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             "the advisor is busy: every place for this kind of call is taken; retry shortly",
                             request)
            token = _caller.set(caller)
            stream = False
            try:
                result = behaviour(request, context)
                if isinstance(result, Iterator):  # a response stream runs after we return: keep the place till then
                    stream = True
                    return _holding(result, places, caller)
                return result
            finally:
                _caller.reset(token)
                try:
                    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
                    if method in STATE_CHANGING or code not in (None, grpc.StatusCode.OK):
                        details = _text(context.details()) if code else ""  # type: ignore[attr-defined]
                        self._record(context, method, caller, (code or grpc.StatusCode.OK).name, details, request)
                finally:
                    if not stream:  # the place is given back only once the audit entry is written (see drain)
                        places.release()

        return guarded

    def _refuse(self, context: grpc.ServicerContext, method: str, caller: Caller | None, code: grpc.StatusCode,
                why: str, request: Any) -> None:
        self._record(context, method, caller, code.name, why, request)
        if self._metrics is not None:
            self._metrics.rpc_refused.labels(code.name).inc()
        context.abort(code, why)

    def _record(self, context: grpc.ServicerContext, method: str, caller: Caller | None, outcome: str, detail: str,
                request: Any) -> None:
        record = AuditEntry(self._clock(), caller.name if caller else "anonymous",
                             caller.role.label if caller else "", context.peer() or "", method, _target(request),
                             outcome, str(detail)[:1024])
        log.info("audit", extra={"actor": record.actor, "role": record.role, "peer": record.peer,
                                 "call": record.call, "target": record.target, "outcome": record.outcome,
                                 "detail": record.detail})
        try:
            self._audit.append(record)
        except Exception:
            log.exception("audit trail not written", extra={"call": method})


def _text(details: str | bytes | None) -> str:
    """A call's status details as text: gRPC keeps those set by `abort` as UTF-8 bytes."""
    return details.decode("utf-8", "replace") if isinstance(details, bytes) else details or ""


def _holding(stream: Iterator[Any], places: threading.BoundedSemaphore, caller: Caller) -> Iterator[Any]:
    token = _caller.set(caller)
    try:
        yield from stream
    finally:
        _caller.reset(token)
        places.release()


def _target(request: Any) -> str:
    for name in TARGET_FIELDS:
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            return value[:128]
    return ""


def _certificate_subject(context: grpc.ServicerContext) -> str | None:
    """The client certificate's subject ("CN=name"), when the connection is mutual TLS."""
    auth: Mapping[str, Any] = context.auth_context() or {}
    names = auth.get("x509_common_name")
    if not names:
        return None
    return "CN=" + bytes(names[0]).decode(errors="replace")
