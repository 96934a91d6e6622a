"""The web listener's requests, as one WSGI application: routes, who gets in, headers, errors.

Every request first names a host of the listener (advisor.web.origin: else 421). `/metrics` goes to
prometheus_client's own WSGI app, untouched and open, as Prometheus scrapes it. Everything else is GET or HEAD
(else 405), but `/logout` (POST only) and `/login` (GET only: a HEAD, as link previews send, uses no code); a
request a browser sent from a page of another origin is refused (403) but for a top-level navigation to the page
or a login link; then it needs a live session, checked before any lookup or validation (the page, its static
files, its JSON: else 401), or for the JSON a bearer token of any role. `/login?code=...` exchanges a one-time
code for a session cookie and redirects to the page; failed logins are throttled per client
(advisor.web.throttle) and logged.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app

from advisor.api.convert import timestamp
from advisor.domain.access import AuditEntry, Caller, Role
from advisor.domain.errors import AdvisorError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from advisor.web import login, origin, pages
from advisor.web.params import Query
from advisor.web.throttle import LoginThrottle
from advisor.web.views import VIEWS, WebSources

log = logging.getLogger("advisor.web")

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]
API = "/api/v1/"
NOT_FOUND = b"<!doctype html><title>Not found</title><p>Not found.</p>\n"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    cache: str = "no-store"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    cookie: str
    authorization: str
    if_none_match: str
    client: str  # the client's address
    host: str  # the Host header
    origin: str
    fetch_site: str  # Sec-Fetch-Site
    fetch_mode: str  # Sec-Fetch-Mode
    scheme: str

    @staticmethod
    def of(environ: dict[str, Any]) -> Request:
        return Request(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                       environ.get("QUERY_STRING", ""), environ.get("HTTP_COOKIE", ""),
                       environ.get("HTTP_AUTHORIZATION", ""), environ.get("HTTP_IF_NONE_MATCH", ""),
                       environ.get("REMOTE_ADDR", "?"), environ.get("HTTP_HOST", ""), environ.get("HTTP_ORIGIN", ""),
                       environ.get("HTTP_SEC_FETCH_SITE", ""), environ.get("HTTP_SEC_FETCH_MODE", ""),
                       environ.get("wsgi.url_scheme", "http"))

    @property
    def peer(self) -> str:
        return f"http:{self.client}"

    @property
    def foreign(self) -> bool:
        return origin.foreign(origin=self.origin, fetch_site=self.fetch_site,
                              own_origin=f"{self.scheme}://{self.host}")


@dataclass(frozen=True)
class Access:
    caller: Caller
    expires_at_s: float | None  # a session's end; None for a bearer token


REASONS = {200: "OK", 303: "See Other", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 421: "Misdirected Request",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
METHODS = {"/logout": ("POST",), "/login": ("GET",)}  # elsewhere GET and HEAD
LOGIN_HINT = f"run `{pages.LOGIN_COMMAND}` (DIR: the advisor's data directory) for a login link"


def _json(status: int, doc: dict[str, Any], *headers: tuple[str, str]) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode(), "application/json", headers)


def _html(status: int, body: bytes, *headers: tuple[str, str]) -> Response:
    return Response(status, body, pages.CONTENT_TYPES[".html"], headers)


class WebApp:
    def __init__(self, sources: WebSources, registry: CollectorRegistry, *, tls: bool = False,
                 host_names: frozenset[str] = frozenset({"localhost"})) -> None:
        self._src = sources
        self._tls = tls
        self._cookie = login.SessionCookie(0, tls)  # named after the port once bound (`bound`)
        self._host_names = host_names
        self._throttle = LoginThrottle(sources.clock)
        self._metrics = make_wsgi_app(registry)
        self._static = pages.load_static()
        self._requests = Counter("advisor_http_requests", "Requests of the web listener (page, JSON, /metrics), by "
                                 "route and status code", ["route", "code"], registry=registry)
        self._seconds = Histogram("advisor_http_request_duration_seconds", "Latency of the web listener's requests",
                                  ["route"], registry=registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self._refusals = Counter("advisor_http_refusals", "Connections and requests the web listener cut off or "
                                 "refused, by reason: deadline (the request not done in time), "
                                 "slow_headers (headers still coming while every worker was busy), overload (too "
                                 "many waiting), tls_handshake, host (an unknown Host), foreign (from a page of "
                                 "another origin), login_throttled", ["reason"], registry=registry)

    def bound(self, port: int) -> None:
        """The listener's port, known once it listens: the session cookie is named after it."""
        self._cookie = login.SessionCookie(port, self._tls)

    def refused(self, reason: str) -> None:
        self._refusals.labels(reason).inc()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request = Request.of(environ)
        if not origin.host_allowed(request.host, self._host_names):
            self.refused("host")
            return self._respond(request, "other", _html(421, pages.unknown_host()), start_response, started)
        if request.path == "/metrics":
            seen: list[str] = []

            def recorded(status: str, headers: Headers, *rest: Any) -> Any:
                seen.append(status.split(" ", 1)[0])
                return start_response(status, headers, *rest)

            body = self._metrics(environ, recorded)
            self._count("metrics", seen[0] if seen else "500", started)
            return body  # type: ignore[no-any-return]
        try:
            route, response = self._route(request)
        except Exception:  # storage failing, a bug: the client gets an incident id, the log the details
            incident = uuid.uuid4().hex[:12]
            log.exception("web request failed", extra={"incident": incident, "path": request.path[:200]})
            route, response = "other", _json(500, {"error": f"internal error (incident {incident}, details in the "
                                                            "advisor's log)"})
        return self._respond(request, route, response, start_response, started)

    def _respond(self, request: Request, route: str, response: Response, start_response: StartResponse,
                 started: float) -> Iterable[bytes]:
        headers: Headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))),
                            ("Cache-Control", response.cache), *pages.SECURITY_HEADERS, *response.headers]
        start_response(f"{response.status} {REASONS.get(response.status, '')}".strip(), headers)
        self._count(route, str(response.status), started)
        return [b"" if request.method == "HEAD" else response.body]

    def _count(self, route: str, code: str, started: float) -> None:
        self._requests.labels(route, code).inc()
        self._seconds.labels(route).observe(time.perf_counter() - started)

    def _route(self, req: Request) -> tuple[str, Response]:
        """The route's name (a metric label: a fixed set) and the answer."""
        methods = METHODS.get(req.path, ("GET", "HEAD"))
        if req.method not in methods:
            return "other", _json(405, {"error": f"method {req.method[:16]!r} not allowed here"},
                                  ("Allow", ", ".join(methods)))
        if not self._src.page_allowed:
            return "refused", _html(403, pages.page_refused())
        if req.foreign and not origin.navigation_allowed(path=req.path, method=req.method, fetch_mode=req.fetch_mode):
            self.refused("foreign")
            if req.path.startswith(API):
                return "refused", _json(403, {"error": "refused: this request came from a page of another site or "
                                                       "port; the advisor answers only its own page"})
            return "refused", _html(403, pages.foreign_refused())
        if req.path == "/login":
            return "login", self._login(req)
        if req.path == "/logout":
            return "logout", self._logout(req)
        if req.path.startswith(API):
            name = req.path.removeprefix(API)
            if name != "session" and name not in VIEWS:
                return "other", _json(404, {"error": f"no such JSON endpoint (there are: session, {', '.join(VIEWS)})"})
            return f"api/{name}", self._api(req, name)
        if req.path == "/":
            return "page", self._file(req, pages.INDEX)
        name = req.path.removeprefix("/static/")
        if req.path.startswith("/static/") and name in self._static and name != pages.INDEX:
            return "static", self._file(req, name)
        return "other", _html(404, NOT_FOUND)

    def _file(self, req: Request, name: str) -> Response:
        """The page (never cached) or one of its static files (cached, revalidated by ETag): with a session."""
        access = self._access(req, bearer_allowed=False)
        if isinstance(access, str):
            return _html(401, pages.login_required(access))
        found = self._static[name]
        cache = "no-store" if name == pages.INDEX else "private, no-cache"
        if req.if_none_match == found.etag:
            return Response(304, b"", found.content_type, (("ETag", found.etag),), cache)
        return Response(200, found.body, found.content_type, (("ETag", found.etag),), cache)

    # -- who gets in --------------------------------------------------------------------------------------

    def _access(self, req: Request, *, bearer_allowed: bool) -> Access | str:
        """The caller of a request, or why there is none."""
        if req.authorization and bearer_allowed:
            token = login.bearer_token(req.authorization)
            caller = self._src.tokens.authenticate(token) if token else None
            return Access(caller, None) if caller else "missing, unknown, revoked or malformed bearer token"
        ended = []
        for secret in self._cookie.secrets(req.cookie):  # the first live session: a tossed cookie hides nothing
            session = self._src.sessions.session(login.digest(secret))
            if session is None:
                continue
            refusal = login.session_refusal(session, self._src.clock())
            if refusal is None:
                return Access(Caller(session.token_name, Role.READER, "session"), session.expires_at_s)
            ended.append(refusal)
        return ended[0] if ended else "you are not logged in"

    def _login(self, req: Request) -> Response:
        wait_s = self._throttle.wait_s(req.client)
        if wait_s > 0:  # not even looked at: the code, if good, stays good
            self.refused("login_throttled")
            return _html(429, pages.login_throttled(wait_s), ("Retry-After", str(math.ceil(wait_s))))
        now = self._src.clock()
        try:
            code = Query(req.query, {"code"}).values.get("code", "")
        except InvalidArgument:
            code = ""
        claimed = self._src.sessions.claim_code(login.digest(code), now) if login.is_code(code) else None
        refusal = login.code_refusal(claimed, now)
        if refusal is not None or claimed is None:
            self._login_failed(req, claimed.token_name if claimed else "anonymous", refusal or "not a login link")
            return _html(401, pages.login_required(refusal or "not a login link"))
        self._throttle.succeeded(req.client)
        secret, session = login.new_session(claimed, now)
        self._src.sessions.add_session(session)
        self._src.sessions.purge(now)
        self._audit(req, claimed.token_name, "Web/Login", "OK", "session opened")
        log.info("web session opened", extra={"actor": claimed.token_name, "peer": req.peer})
        return _html(303, b"", ("Location", "/"),
                     ("Set-Cookie", self._cookie.set(secret, session.expires_at_s - now)))

    def _login_failed(self, req: Request, actor: str, why: str) -> None:
        failure = self._throttle.failed(req.client)
        log.warning("web login failed", extra={"actor": actor, "peer": req.peer, "reason": why,
                                               "failures": failure.failures, "wait_s": failure.wait_s,
                                               "audited": failure.audited})
        if failure.audited:
            self._audit(req, actor, "Web/Login", "UNAUTHENTICATED", why)

    def _logout(self, req: Request) -> Response:
        for secret in self._cookie.secrets(req.cookie):
            session = self._src.sessions.session(login.digest(secret))
            if session is not None and self._src.sessions.end_session(session.digest):
                self._audit(req, session.token_name or "anonymous", "Web/Logout", "OK", "session ended")
        return _html(200, pages.logged_out(), ("Set-Cookie", self._cookie.cleared()))

    def _audit(self, req: Request, actor: str, call: str, outcome: str, detail: str) -> None:
        self._src.audit.append(AuditEntry(self._src.clock(), actor, Role.READER.label, req.peer, call, "", outcome,
                                          detail))

    # -- JSON ---------------------------------------------------------------------------------------------

    def _api(self, req: Request, name: str) -> Response:
        access = self._access(req, bearer_allowed=True)
        if isinstance(access, str):
            return _json(401, {"error": f"login required: {access}", "login": LOGIN_HINT})
        try:
            if name == "session":
                Query(req.query, ())
                return _json(200, self._session(access))
            view = VIEWS[name]
            return _json(200, view.read(self._src, Query(req.query, view.parameters)))
        except (InvalidArgument, NotFound) as error:
            return _json(400 if isinstance(error, InvalidArgument) else 404,
                         {"error": str(error), "parameter": error.field})
        except Unavailable as error:
            return _json(503, {"error": str(error)}, ("Retry-After", "1"))
        except FailedPrecondition as error:
            return _json(409, {"error": str(error)})
        except AdvisorError as error:
            return _json(400, {"error": str(error)})

    @staticmethod
    def _session(access: Access) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": access.caller.name, "role": access.caller.role.label, "via": access.caller.via}
        if access.expires_at_s is not None:
            doc["expireTime"] = timestamp(access.expires_at_s).ToJsonString()
        return doc
