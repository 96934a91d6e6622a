"""The web listener's requests, as one WSGI application: routes, who gets in, headers, errors.

Every request first names a host of the listener (advisor.web.origin: else 421). `/metrics` goes to
prometheus_client's own WSGI app, untouched and open, as Prometheus scrapes it. Everything else is GET or HEAD
(else 405), but `/logout` (POST only) and `/login` (GET and HEAD show the login page and use nothing; POST
claims a code); a request a browser sent from a page of another origin is refused (403) but for a top-level
navigation to the page or the login page. The page and its static files hold no data and are served to anyone
who gets this far; the JSON needs `Authorization: Bearer` with a live session's secret or a token of any role,
checked before any lookup or validation (else 401). The login page posts the code of its link's fragment to
`/login` and gets the session's secret in the answer, which it keeps in the origin's `sessionStorage` (no
cookie: advisor.web.login says why); failed logins are throttled per client (advisor.web.throttle) and logged.
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
    authorization: str
    if_none_match: str
    client: str  # the client's address
    host: str  # the Host header
    origin: str
    fetch_site: str  # Sec-Fetch-Site
    fetch_mode: str  # Sec-Fetch-Mode
    scheme: str
    content_type: str
    body: bytes | None  # a POST's body; None when longer than MAX_BODY_BYTES

    @staticmethod
    def of(environ: dict[str, Any]) -> Request:
        method = environ.get("REQUEST_METHOD", "")
        return Request(method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
                       environ.get("HTTP_AUTHORIZATION", ""), environ.get("HTTP_IF_NONE_MATCH", ""),
                       environ.get("REMOTE_ADDR", "?"), environ.get("HTTP_HOST", ""), environ.get("HTTP_ORIGIN", ""),
                       environ.get("HTTP_SEC_FETCH_SITE", ""), environ.get("HTTP_SEC_FETCH_MODE", ""),
                       environ.get("wsgi.url_scheme", "http"), environ.get("CONTENT_TYPE", ""),
                       _body(environ) if method == "POST" else b"")

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


REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
           415: "Unsupported Media Type", 421: "Misdirected Request", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}
METHODS = {"/logout": ("POST",), "/login": ("GET", "HEAD", "POST")}  # elsewhere GET and HEAD
MAX_BODY_BYTES = 1024  # a login's `{"code": "..."}` is under 60 bytes; a logout has none
LOGIN_HINT = f"run `{pages.LOGIN_COMMAND}` (DIR: the advisor's data directory) for a login link"


def _body(environ: dict[str, Any]) -> bytes | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 <= length <= MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(length) if length else b""


def _json(status: int, doc: dict[str, Any], *headers: tuple[str, str]) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode(), "application/json", headers)


def _html(status: int, body: bytes, *headers: tuple[str, str]) -> Response:
    return Response(status, body, pages.CONTENT_TYPES[".html"], headers)


class WebApp:
    def __init__(self, sources: WebSources, registry: CollectorRegistry, *,
                 host_names: frozenset[str] = frozenset({"localhost"})) -> None:
        self._src = sources
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
            # Counted under the route that failed, so a failing endpoint shows in its own series.
            route = self._route_name(request)
            response = _json(500, {"error": f"internal error (incident {incident}, details in the advisor's log)"})
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
            return "login", self._login(req) if req.method == "POST" else self._file(req, pages.LOGIN)
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
        if req.path.startswith("/static/") and name in self._static and name not in pages.DOCUMENTS:
            return "static", self._file(req, name)
        return "other", _html(404, NOT_FOUND)

    def _route_name(self, req: Request) -> str:
        """The route a request's path names, as `_route` labels it: for an answer `_route` did not give (a 500)."""
        if req.path in ("/login", "/logout"):
            return req.path.removeprefix("/")
        if req.path.startswith(API):
            name = req.path.removeprefix(API)
            return f"api/{name}" if name == "session" or name in VIEWS else "other"
        if req.path == "/":
            return "page"
        name = req.path.removeprefix("/static/")
        return "static" if req.path.startswith("/static/") and name in self._static else "other"

    def _file(self, req: Request, name: str) -> Response:
        """The page or the login page (never cached) or one of their static files (cached, revalidated by ETag):
        code and style only, no data, so no session is asked for."""
        found = self._static[name]
        cache = "no-store" if name in pages.DOCUMENTS else "private, no-cache"
        if req.if_none_match == found.etag:
            return Response(304, b"", found.content_type, (("ETag", found.etag),), cache)
        return Response(200, found.body, found.content_type, (("ETag", found.etag),), cache)

    # -- who gets in --------------------------------------------------------------------------------------

    def _access(self, req: Request) -> Access | str:
        """The caller of a request, or why there is none: a bearer secret of a session, else a token's."""
        secret = login.bearer_token(req.authorization)
        if secret is None:
            return "malformed Authorization header (Bearer expected)" if req.authorization else "you are not logged in"
        session = self._src.sessions.session(login.digest(secret)) if login.is_secret(secret) else None
        if session is not None:
            refusal = login.session_refusal(session, self._src.clock())
            return refusal or Access(Caller(session.token_name, Role.READER, "session"), session.expires_at_s)
        caller = self._src.tokens.authenticate(secret)
        return Access(caller, None) if caller else "unknown, ended or revoked session or token"

    def _login(self, req: Request) -> Response:
        wait_s = self._throttle.wait_s(req.client)
        if wait_s > 0:  # not even looked at: the code, if good, stays good
            self.refused("login_throttled")
            return _json(429, {"error": f"too many failed logins from your address: wait {math.ceil(wait_s)} s",
                               "login": LOGIN_HINT}, ("Retry-After", str(math.ceil(wait_s))))
        if req.body is None:
            return _json(413, {"error": f"a login's body is at most {MAX_BODY_BYTES} bytes"})
        if req.content_type.partition(";")[0].strip().lower() != "application/json":
            # also keeps a login from being a "simple" cross-origin request: a browser asks first (preflight)
            return _json(415, {"error": 'a login is {"code": "..."} as application/json'})
        now = self._src.clock()
        code = login.posted_code(req.body)
        claimed = self._src.sessions.claim_code(login.digest(code), now) if login.is_secret(code) else None
        refusal = login.code_refusal(claimed, now)
        if refusal is not None or claimed is None:
            self._login_failed(req, claimed.token_name if claimed else "anonymous", refusal or "not a login link")
            return _json(401, {"error": refusal or "not a login link", "login": LOGIN_HINT})
        self._throttle.succeeded(req.client)
        secret, session = login.new_session(claimed, now)
        self._src.sessions.add_session(session)
        self._src.sessions.purge(now)
        self._audit(req, claimed.token_name, "Web/Login", "OK", "session opened")
        log.info("web session opened", extra={"actor": claimed.token_name, "peer": req.peer})
        return _json(200, {"session": secret, "expireTime": timestamp(session.expires_at_s).ToJsonString()})

    def _login_failed(self, req: Request, actor: str, why: str) -> None:
        failure = self._throttle.failed(req.client)
        log.warning("web login failed", extra={"actor": actor, "peer": req.peer, "reason": why,
                                               "failures": failure.failures, "wait_s": failure.wait_s,
                                               "audited": failure.audited})
        if failure.audited:
            self._audit(req, actor, "Web/Login", "UNAUTHENTICATED", why)

    def _logout(self, req: Request) -> Response:
        """Ends the session whose secret the request bears (the page then forgets it); ended already is no error."""
        secret = login.bearer_token(req.authorization) or ""
        session = self._src.sessions.session(login.digest(secret)) if login.is_secret(secret) else None
        if session is None or not self._src.sessions.end_session(session.digest):
            return _json(200, {"ended": False})
        self._audit(req, session.token_name or "anonymous", "Web/Logout", "OK", "session ended")
        return _json(200, {"ended": True})

    def _audit(self, req: Request, actor: str, call: str, outcome: str, detail: str) -> None:
        self._src.audit.append(AuditEntry(self._src.clock(), actor, Role.READER.label, req.peer, call, "", outcome,
                                          detail))

    # -- JSON ---------------------------------------------------------------------------------------------

    def _api(self, req: Request, name: str) -> Response:
        access = self._access(req)
        if isinstance(access, str):
            return _json(401, {"error": f"login required: {access}", "login": LOGIN_HINT})
        query: Query | None = None
        try:
            if name == "session":
                Query(req.query, ())
                return _json(200, self._session(access))
            view = VIEWS[name]
            query = Query(req.query, view.parameters)
            return _json(200, view.read(self._src, query))
        except InvalidArgument as error:
            return _json(400, {"error": str(error), "parameter": error.field})
        except NotFound as error:
            # The use case names its own field (host_id, id); the page and scripts gave a query parameter
            # (drain_host_id, recommendation_id): name the one whose value was not found.
            given = query.values.items() if query is not None else ()
            parameter = next((p for p, value in given if value == error.ident), error.field)
            message = str(error).removeprefix(f"{error.field}:")
            return _json(404, {"error": f"{parameter}:{message}", "parameter": parameter})
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
