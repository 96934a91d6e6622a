"""The web listener's rules that need no advisor behind it: methods, the page refused beyond loopback, /metrics
open and untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from advisor.web.handler import WebApp
from advisor.web.views import WebSources


def _app(*, page_allowed: bool) -> WebApp:
    nothing: Any = None  # none of these is reached by the requests below
    sources = WebSources(nothing, nothing, nothing, 0.5, nothing, nothing, nothing, lambda: 0.0, Path("/srv/advisor"),
                         page_allowed=page_allowed)
    return WebApp(sources, CollectorRegistry())


def _call(app: WebApp, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
                         "wsgi.input": None, "SERVER_NAME": "x", "SERVER_PORT": "1"}, start_response))
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
    for path in ("/nosuch", "/static/", "/static/index.html", "/static/../app.py", "/static/README.md",
                 "/api/v1/", "/api/v1/nosuch", "//"):
        assert _call(app, path)[0].startswith("404"), path
    status, headers, body = _call(app, "/", "HEAD")
    assert status.startswith("401") and body == b"" and int(headers["Content-Length"]) > 0
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
