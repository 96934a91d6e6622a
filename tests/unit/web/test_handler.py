"""The web listener's rules that need no advisor behind it: methods, the page refused beyond loopback, /metrics
open and untouched, the Host checked, requests from pages of other origins refused, no cookie taken, a login's
body bounded and JSON, no server path shown."""

from __future__ import annotations

import io
from typing import Any

from prometheus_client import CollectorRegistry

from advisor.web.handler import WebApp
from advisor.web.views import WebSources


def _app(*, page_allowed: bool, audit: Any = None) -> WebApp:
    nothing: Any = None  # none of these is reached by the requests below
    sources = WebSources(nothing, nothing, nothing, 0.5, nothing, nothing, audit, lambda: 0.0,
                         page_allowed=page_allowed)
    return WebApp(sources, CollectorRegistry(), host_names=frozenset({"localhost", "advisor.example"}))


def _call(app: WebApp, path: str, method: str = "GET", body: bytes = b"", **headers: str
          ) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "x", "SERVER_PORT": "1",
               "HTTP_HOST": "127.0.0.1:9464", "wsgi.url_scheme": "http"}
    for name, value in headers.items():
        environ[name if name == "CONTENT_TYPE" else f"HTTP_{name.upper()}"] = value
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_beyond_loopback_only_metrics_are_served() -> None:
    app = _app(page_allowed=False)
    status, headers, body = _call(app, "/")
    assert status.startswith("403") and b"loopback" in body and "Content-Security-Policy" in headers
    assert _call(app, "/login")[0].startswith("403") and _call(app, "/api/v1/models")[0].startswith("403")
    status, headers, body = _call(app, "/metrics")
    assert status.startswith("200") and b"advisor_http_requests_total" in body
    assert "Content-Security-Policy" not in headers  # /metrics is prometheus_client's, as before


def test_only_reading_methods_and_known_paths() -> None:
    app = _app(page_allowed=True)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        status, headers, _ = _call(app, "/", method)
        assert status.startswith("405") and headers["Allow"] == "GET, HEAD", method
    # Logging out changes state: POST only. The login page is shown by GET and HEAD (a link preview's HEAD uses no
    # code: the code is in the fragment, which no request carries); a login posts its code.
    for path, method, allowed in (("/logout", "GET", "POST"), ("/logout", "HEAD", "POST"),
                                  ("/login", "PUT", "GET, HEAD, POST")):
        status, headers, _ = _call(app, path, method)
        assert status.startswith("405") and headers["Allow"] == allowed, (path, method)
    for path in ("/nosuch", "/static/", "/static/index.html", "/static/login.html", "/static/../app.py",
                 "/static/README.md", "/api/v1/", "/api/v1/nosuch", "//"):
        assert _call(app, path)[0].startswith("404"), path
    # The pages and their files hold no data: served without a session (the JSON they read needs one).
    status, headers, body = _call(app, "/", "HEAD")
    assert status.startswith("200") and body == b"" and int(headers["Content-Length"]) > 1000
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    status, headers, body = _call(app, "/login")
    assert status.startswith("200") and b'<script src="/static/login.js"' in body and headers["Cache-Control"] == \
        "no-store"
    assert _call(app, "/static/session.js")[0].startswith("200")


def test_only_the_listeners_own_names_and_any_address_are_answered() -> None:
    app = _app(page_allowed=True)
    for host in ("evil.example", "evil.example:9464", "localhost.evil.example", "127.0.0.1.evil.example"):
        status, _, body = _call(app, "/metrics", HOST=host)
        assert status.startswith("421") and b"advisor_http" not in body, host
        assert _call(app, "/", HOST=host)[0].startswith("421"), host
    for host in ("localhost:9464", "LOCALHOST", "advisor.example.", "127.0.0.1", "[::1]:9464", "10.1.2.3:80", ""):
        assert _call(app, "/metrics", HOST=host)[0].startswith("200"), host
    assert 'advisor_http_refusals_total{reason="host"} 8.0' in _call(app, "/metrics")[2].decode()


def test_requests_from_a_page_of_another_origin_are_refused() -> None:
    app = _app(page_allowed=True)
    other_port = {"ORIGIN": "http://127.0.0.1:8000", "SEC_FETCH_SITE": "same-site", "SEC_FETCH_MODE": "cors"}
    for path, method in (("/api/v1/session", "GET"), ("/static/app.js", "GET"), ("/logout", "POST"), ("/", "GET"),
                         ("/login", "POST")):
        status, _, body = _call(app, path, method, **other_port)
        assert status.startswith("403") and b"another site or port" in body, path
    assert _call(app, "/api/v1/session", SEC_FETCH_SITE="cross-site")[0].startswith("403")
    assert _call(app, "/logout", "POST", ORIGIN="http://localhost:9464")[0].startswith("403")  # another origin
    # Its own page, a user's typed URL or bookmark, and clients that are no browser: on to the session check.
    for headers in ({"SEC_FETCH_SITE": "same-origin", "SEC_FETCH_MODE": "cors"}, {"SEC_FETCH_SITE": "none"}, {},
                    {"ORIGIN": "http://127.0.0.1:9464", "SEC_FETCH_SITE": "same-origin"}):
        assert _call(app, "/api/v1/session", **headers)[0].startswith("401"), headers
    # A top-level navigation to the page or a login link from anywhere: the other page sees nothing of it.
    navigate = {"SEC_FETCH_SITE": "same-site", "SEC_FETCH_MODE": "navigate"}
    assert _call(app, "/", **navigate)[0].startswith("200") and _call(app, "/login", **navigate)[0].startswith("200")
    assert _call(app, "/api/v1/session", **navigate)[0].startswith("403")


def test_the_json_takes_a_bearer_header_never_a_cookie() -> None:
    app = _app(page_allowed=True)
    for headers in ({"COOKIE": "advisor_session_9464=" + "a" * 43}, {"COOKIE": "advisor_session=" + "a" * 43}, {}):
        status, _, body = _call(app, "/api/v1/session", **headers)
        assert status.startswith("401") and b"not logged in" in body, headers  # not even looked up
    status, _, body = _call(app, "/api/v1/session", AUTHORIZATION="Basic dXNlcjpwdw==")
    assert status.startswith("401") and b"Bearer expected" in body
    status, headers, _ = _call(app, "/")
    assert "Set-Cookie" not in headers


def test_a_login_is_a_small_json_body() -> None:
    app = _app(page_allowed=True)
    json_type = {"CONTENT_TYPE": "application/json"}
    status, _, body = _call(app, "/login", "POST", b'{"code": "' + b"c" * 2000 + b'"}', **json_type)
    assert status.startswith("413") and b"at most 1024 bytes" in body
    # A form or text/plain is what a page of another origin could post without asking first (no preflight).
    for kind in ("application/x-www-form-urlencoded", "text/plain", ""):
        status, _, body = _call(app, "/login", "POST", b'{"code": "x"}', CONTENT_TYPE=kind)
        assert status.startswith("415") and b"application/json" in body, kind


def test_a_malformed_login_is_a_failed_login_counted_and_throttled() -> None:
    audited: list[Any] = []
    app = _app(page_allowed=True, audit=audited)
    for _ in range(3):  # nested deeper than the JSON parser goes: was a 500, not counted
        status, _, body = _call(app, "/login", "POST", b"[" * 1000, CONTENT_TYPE="application/json")
        assert status.startswith(("401", "429")) and b"advisor ui" in body
    metrics = _call(app, "/metrics")[2].decode()
    assert 'advisor_http_requests_total{code="401",route="login"}' in metrics and 'code="500"' not in metrics
    assert audited and audited[0].outcome == "UNAUTHENTICATED"


def test_no_answer_names_a_path_of_the_server() -> None:
    app = _app(page_allowed=True)
    for path in ("/", "/login", "/api/v1/session", "/static/common.js", "/static/login.js"):
        body = _call(app, path)[2].decode()
        assert "/srv" not in body and "/tmp" not in body and "/home" not in body, path
        assert "advisor ui --data-dir DIR" in body or path in ("/", "/login"), path


def test_a_failure_is_counted_under_its_route() -> None:
    app = _app(page_allowed=True)  # no token store behind it: looking the token up fails
    status, _, body = _call(app, "/api/v1/session", AUTHORIZATION="Bearer adv_x")
    assert status.startswith("500") and b"incident" in body
    metrics = _call(app, "/metrics")[2].decode()
    assert 'advisor_http_requests_total{code="500",route="api/session"}' in metrics, metrics
