"""The web listener as a hostile client finds it: a real `advisor serve` process (its stderr read whole) for slow
and idle connections and failed logins, and in-process advisors for the session's origin (in Chromium: a page of
another port of the host reads nothing of the session and cannot use it), the Host header, HEAD on a login link,
server paths, the listen backlog and TLS. Each refusal is also read back from /metrics."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from advisor.app import App
from advisor.cli.main import main
from advisor.domain.errors import ConfigError
from advisor.lab.procs import free_port
from advisor.web import server as web_server
from tests.integration import test_tls
from tests.support.chromium import Browser

pytestmark = pytest.mark.integration

SLOW_CLIENTS = 32
HEADER_EVERY_S = 5.0


@dataclass
class Served:
    base: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`advisor serve` with its page on loopback, its stderr in a file."""
    port, log = free_port(), tmp_path / "stderr.log"
    data_dir = tmp_path / "data"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "advisor.cli", "serve", "--data-dir", str(data_dir)],
            env={**os.environ, "ADVISOR_LISTEN": "127.0.0.1:0", "ADVISOR_METRICS_LISTEN": f"127.0.0.1:{port}",
                 "ADVISOR_LOG_LEVEL": "debug"}, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while _status(f"{base}/metrics", timeout=1) != 200:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield Served(base, port, data_dir, process, log)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def _request(url: str, *, method: str = "GET", timeout: float = 5, context: ssl.SSLContext | None = None,
             body: bytes | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection, headers exactly as given (no urllib defaults); a fragment is not sent,
    as browsers do not send it."""
    scheme, _, rest = url.partition("://")
    hostport, _, path = rest.partition("#")[0].partition("/")
    host, _, port = hostport.rpartition(":")
    conn: http.client.HTTPConnection = (http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
                                        if scheme == "https" else http.client.HTTPConnection(host, int(port),
                                                                                             timeout=timeout))
    try:
        conn.request(method, "/" + path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _status(url: str, **kwargs: object) -> int:
    try:
        return _request(url, **kwargs)[0]  # type: ignore[arg-type]
    except OSError:
        return 0


def _posted(link: str, code: str | None = None, **kwargs: object) -> tuple[int, dict[str, str], bytes]:
    """What the login page does: post the code of a link's fragment (or `code`) to its /login."""
    code = link.partition("#code=")[2] if code is None else code
    return _request(link.partition("#")[0], method="POST", body=json.dumps({"code": code}).encode(),
                    Content_Type="application/json", **kwargs)  # type: ignore[arg-type]


def _metric(base: str, name: str, context: ssl.SSLContext | None = None) -> dict[str, float]:
    """The samples of one metric, by their labels as written."""
    text = _request(f"{base}/metrics", context=context)[2].decode()
    return {m.group(1) or "": float(m.group(2)) for m in re.finditer(rf"^{name}(\{{.*?\}})? (\S+)$", text, re.M)}


def _slow_client(port: int, closed_after: list[float], stop: threading.Event) -> None:
    """Slowloris: a request whose headers never end, one header line every 5 s."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(HEADER_EVERY_S)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while not stop.is_set():
            try:
                if sock.recv(4096) == b"":
                    break  # the listener shut it
            except TimeoutError:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
            except OSError:
                break
        else:
            return
    closed_after.append(time.monotonic() - started)


def _attack(port: int, clients: int, seconds: float, probe: Callable[[], list[int]]) -> tuple[list[float], list[int]]:
    """`clients` slow clients for `seconds`, probing meanwhile; when each was shut, and what the probes got."""
    stop, closed_after = threading.Event(), []
    threads = [threading.Thread(target=_slow_client, args=(port, closed_after, stop)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    answers: list[int] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        answers.extend(probe())
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join()
    return closed_after, answers


def test_slow_and_idle_connections_starve_nothing_and_nothing_prints_outside_the_log(served: Served) -> None:
    base = served.base
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(8)]  # connect, never send

    def probe() -> list[int]:
        return [_status(f"{base}/metrics"), _status(f"{base}/"), _status(f"{base}/api/v1/session")]

    # 32 clients sending a header line every 5 s: every other request answered meanwhile, each slow one shut at
    # the whole-request deadline (it never misses a 10 s read timeout).
    closed_after, answers = _attack(served.port, SLOW_CLIENTS, web_server.REQUEST_DEADLINE_S + 2, probe)
    assert answers and set(answers) == {200, 401}, sorted(set(answers))
    assert len(closed_after) == SLOW_CLIENTS and max(closed_after) < web_server.REQUEST_DEADLINE_S + 2, closed_after
    for sock in idle:  # shut at the deadline too
        sock.settimeout(1)
        assert sock.recv(100) == b""
        sock.close()
    assert _metric(base, "advisor_http_refusals_total")['{reason="deadline"}'] >= SLOW_CLIENTS + len(idle)

    # More slow clients than workers: the slowest give way while every worker is busy.
    closed_after, answers = _attack(served.port, web_server.WORKERS + 32, 4.0, probe)
    assert answers and set(answers) == {200, 401}, sorted(set(answers))
    assert _metric(base, "advisor_http_refusals_total")['{reason="slow_headers"}'] > 0

    # The idle connections timed out and the slow ones were shut: the log has JSON lines only, no traceback.
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    lines = served.lines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert "serving" in [e["msg"] for e in entries] and not [line for line in lines if line.startswith("Traceback")]


def test_failed_logins_are_throttled_logged_and_audited_within_bounds(served: Served) -> None:
    base = served.base
    link = subprocess.run([sys.executable, "-m", "advisor.cli", "ui", "--data-dir", str(served.data_dir)],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    codes = [_posted(link, secrets.token_urlsafe(32))[0] for _ in range(300)]  # guessing, flat out
    failed, throttled = codes.count(401), codes.count(429)
    assert failed + throttled == 300 and failed <= 6 and codes[:3] == [401] * 3, codes[:10]

    # While a client waits, even a good link is not looked at (and stays good); after the wait it works.
    status, headers, _ = _posted(link)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 300
    assert _metric(base, "advisor_http_refusals_total")['{reason="login_throttled"}'] == throttled + 1
    time.sleep(int(headers["Retry-After"]) + 0.2)
    status, headers, body = _posted(link)
    assert status == 200 and len(json.loads(body)["session"]) == 43 and "Set-Cookie" not in headers

    logged = [json.loads(line) for line in served.lines() if '"web login failed"' in line]
    assert len(logged) == failed and all(e["level"] == "warning" and e["peer"] == "http:127.0.0.1" for e in logged)
    with sqlite3.connect(served.data_dir / "advisor.sqlite3") as db:
        rows = db.execute("SELECT outcome, count(*) FROM audit WHERE call = 'Web/Login' GROUP BY outcome").fetchall()
    assert dict(rows) == {"UNAUTHENTICATED": min(failed, 5), "OK": 1}


# -- in-process advisors ---------------------------------------------------------------------------------------


def _login(app: App, capsys: pytest.CaptureFixture[str], *, context: ssl.SSLContext | None = None) -> tuple[str, str]:
    """A fresh login link from `advisor ui`, used as the login page does: the link and the session's secret."""
    capsys.readouterr()
    assert main(["ui", "--data-dir", str(app.settings.data_dir)]) == 0
    link = capsys.readouterr().out.strip()
    status, headers, body = _posted(link, context=context)
    assert status == 200 and "Set-Cookie" not in headers, status
    return link, json.loads(body)["session"]


def test_a_session_is_of_no_use_to_a_page_of_another_port(make_app: Callable[..., App],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(metrics_listen="127.0.0.1:0")
    own = f"http://127.0.0.1:{app.metrics_port}"
    _, secret = _login(app, capsys)
    bearer = f"Bearer {secret}"
    same = {"Authorization": bearer, "Sec_Fetch_Site": "same-origin", "Sec_Fetch_Mode": "cors"}
    assert _request(f"{own}/api/v1/session", **same)[0] == 200
    # Only the bearer header counts: the secret as a cookie (what a browser would send a page of any port) is not
    # a session.
    assert _request(f"{own}/api/v1/session", Cookie=f"advisor_session_{app.metrics_port}={secret}")[0] == 401
    # A page on 127.0.0.1:8000 cannot read the secret (another origin's storage); even holding it, a browser's
    # request from there is refused.
    other = {"Authorization": bearer, "Origin": "http://127.0.0.1:8000", "Sec_Fetch_Site": "same-site",
             "Sec_Fetch_Mode": "cors"}
    for path, method in (("/api/v1/session", "GET"), ("/api/v1/recommendations", "GET"), ("/static/app.js", "GET"),
                         ("/logout", "POST")):
        status, _, body = _request(f"{own}{path}", method=method, **other)
        assert status == 403 and b"another site or port" in body, path
    assert _request(f"{own}/api/v1/session", Sec_Fetch_Site="same-site", Sec_Fetch_Mode="no-cors")[0] \
        == 403  # an <img> or <script> there
    # Logging out: never by a GET (a link or an image anywhere), by a POST bearing the secret.
    assert _request(f"{own}/logout", **same)[0] == 405
    assert _request(f"{own}/api/v1/session", **same)[0] == 200
    assert _request(f"{own}/logout", method="POST", Origin=own, **same)[0] == 200
    assert _request(f"{own}/api/v1/session", **same)[0] == 401
    assert _metric(own, "advisor_http_refusals_total")['{reason="foreign"}'] == 5


@pytest.fixture
def other_port() -> Iterator[str]:
    """Another web server on this host: an empty page at http://127.0.0.1:PORT/ (and /toss?NAME=VALUE sets that
    cookie, which a browser then sends to every port of the host)."""
    page = b"<!doctype html><title>another port</title><p>hello"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            if self.path.startswith("/toss?"):  # /toss?NAME=VALUE: sets that cookie for every port, under /api
                self.send_header("Set-Cookie", f"{self.path.removeprefix('/toss?')}; Path=/api; Max-Age=600")
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


def _arrive(browser: Browser, url: str) -> None:
    """The browser's tab navigated to `url`, its page drawn once (or refused: the login page)."""
    browser.navigate(url)
    browser.wait_for(f"location.href.startsWith({url.partition('#')[0]!r}) && document.readyState === 'complete' && "
                     "(!!document.body.dataset.drawnMs || document.title !== 'Migration advisor')")


STOLEN = """(async () => {  // all a page can try: its storage, its cookies, and requests to the advisor's port
    const tries = [
      fetch("OWN/api/v1/session", {credentials: "include"}),
      fetch("OWN/api/v1/session", {credentials: "include", mode: "no-cors"}),
      fetch("OWN/logout", {method: "POST", credentials: "include", mode: "no-cors"}),
    ];
    const answers = await Promise.all(tries.map(t => t.then(r => r.type + " " + r.status, e => e.name)));
    return {stored: sessionStorage.length + localStorage.length, cookie: document.cookie, answers};
})()"""


def test_in_chromium_a_page_of_another_port_cannot_read_or_use_the_session_and_the_console_works(
        make_app: Callable[..., App], other_port: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = make_app(metrics_listen="127.0.0.1:0")
    own = f"http://127.0.0.1:{app.metrics_port}"
    capsys.readouterr()
    assert main(["ui", "--data-dir", str(app.settings.data_dir)]) == 0
    link = capsys.readouterr().out.strip()
    browser = Browser(tmp_path / "profile", 1366, 768)
    try:
        # Logging in: the login page posts the code and keeps the secret for this origin and tab; no cookie.
        browser.open(link)
        browser.wait_for(f"location.href === '{own}/' && document.body && document.body.dataset.drawnMs")
        secret = browser.evaluate("sessionStorage.getItem('advisor.session')")
        assert len(secret) == 43 and browser.evaluate("document.cookie") == ""
        assert browser.call("Storage.getCookies")["cookies"] == []
        assert browser.wait_for("document.getElementById('who').textContent").startswith("reader session as web")
        assert browser.evaluate("[...document.querySelectorAll('p.error')].length") == 0

        # The same tab on a page of another port of the host: nothing stored, no cookie; its requests to the
        # advisor are refused by the advisor (403, counted) and give it nothing to read (the browser: CORS, and
        # Cross-Origin-Resource-Policy for no-cors).
        _arrive(browser, f"{other_port}/")
        found = browser.evaluate(STOLEN.replace("OWN", own))
        assert found["stored"] == 0 and found["cookie"] == "", found
        assert found["answers"] == ["TypeError"] * 3, found
        assert _metric(own, "advisor_http_refusals_total")['{reason="foreign"}'] == 3
        assert _request(f"{own}/api/v1/session", Authorization=f"Bearer {secret}")[0] == 200  # it lives on

        # Back on the advisor's page in that tab: still logged in; a JSON link opens the JSON with the session.
        _arrive(browser, f"{own}/")
        assert browser.wait_for("document.getElementById('who').textContent").startswith("reader session as web")
        browser.call("Runtime.evaluate", expression="document.getElementById('cluster-json').click()", userGesture=True)
        deadline = time.monotonic() + 10
        while not [t for t in browser.call("Target.getTargets")["targetInfos"]
                   if t["url"].startswith(f"blob:{own}/")]:
            assert time.monotonic() < deadline, "the JSON link opened nothing"
            time.sleep(0.1)
        # Log out: the advisor ends the session, the tab forgets it, the page asks for a login.
        browser.evaluate("document.getElementById('logout').click()")
        browser.wait_for("document.title === 'Login required'")
        assert browser.evaluate("sessionStorage.length") == 0
        assert "not logged in" in browser.evaluate("document.getElementById('banner').textContent")
        assert _request(f"{own}/api/v1/session", Authorization=f"Bearer {secret}")[0] == 401
        audit = [(e.call, e.outcome) for e in app.audit.recent(10) if e.call.startswith("Web/")]
        assert ("Web/Login", "OK") in audit and ("Web/Logout", "OK") in audit
    finally:
        browser.close()


def test_in_chromium_two_advisors_of_one_host_keep_their_sessions_and_a_cookie_changes_nothing(
        make_app: Callable[..., App], other_port: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    advisors = [make_app(data_dir=tmp_path / name, metrics_listen="127.0.0.1:0") for name in ("one", "two")]
    browser = Browser(tmp_path / "profile", 1366, 768)
    session = "fetch('/api/v1/session', {headers: AdvisorSession.headers()}).then(r => r.status)"
    try:
        browser.open("about:blank")
        for app in advisors:  # one tab logs in to both, one after the other
            capsys.readouterr()
            assert main(["ui", "--data-dir", str(app.settings.data_dir)]) == 0
            browser.navigate(capsys.readouterr().out.strip())
            browser.wait_for(f"location.href === 'http://127.0.0.1:{app.metrics_port}/' && document.body && "
                             "document.body.dataset.drawnMs")
        secrets_kept = []
        for app in advisors:  # each origin kept its own secret: the second login did not log the first out
            _arrive(browser, f"http://127.0.0.1:{app.metrics_port}/")
            assert browser.evaluate(session) == 200
            secrets_kept.append(browser.evaluate("sessionStorage.getItem('advisor.session')"))
        assert len(set(secrets_kept)) == 2

        # A server on another port sets a cookie of the old session cookie's name: it is sent, and ignored.
        first = advisors[0].metrics_port
        _arrive(browser, f"{other_port}/toss?advisor_session_{first}={'x' * 43}")
        _arrive(browser, f"http://127.0.0.1:{first}/")
        assert browser.evaluate(session) == 200
        assert browser.evaluate("[...document.querySelectorAll('p.error')].length") == 0
        # A new tab is another storage: it has no session (and opens the page asking for a login).
        browser.open(f"http://127.0.0.1:{first}/")
        browser.wait_for("document.title === 'Login required'")
    finally:
        browser.close()


def test_host_header_head_on_a_login_link_server_paths_and_backlog(make_app: Callable[..., App],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(metrics_listen="127.0.0.1:0")
    own = f"http://127.0.0.1:{app.metrics_port}"
    # DNS rebinding: a name made to point at 127.0.0.1 is not one of the listener's.
    for path in ("/metrics", "/", "/api/v1/session"):
        assert _request(f"{own}{path}", Host=f"rebound.example:{app.metrics_port}")[0] == 421, path
    assert _request(f"{own}/metrics", Host=f"localhost:{app.metrics_port}")[0] == 200
    assert _metric(own, "advisor_http_refusals_total")['{reason="host"}'] == 3

    # A link preview's HEAD or GET uses no code (it is in the fragment, never sent): the link still logs in once.
    capsys.readouterr()
    assert main(["ui", "--data-dir", str(app.settings.data_dir)]) == 0
    link = capsys.readouterr().out.strip()
    assert _request(link, method="HEAD")[0] == 200 and _request(link)[0] == 200
    assert _posted(link)[0] == 200 and _posted(link)[0] == 401

    # No answer names a path of the server's machine.
    data_dir = str(app.settings.data_dir.resolve())
    for path in ("/", "/api/v1/session", "/login", "/nosuch"):
        body = _request(f"{own}{path}")[2].decode()
        assert data_dir not in body and str(app.settings.data_dir) not in body, path
    body = _posted(f"{own}/login", secrets.token_urlsafe(32))[2].decode()
    assert data_dir not in body and "advisor ui --data-dir DIR" in body

    listening = subprocess.run(["ss", "-ltnH", f"sport = :{app.metrics_port}"], capture_output=True, text=True,
                               check=True).stdout.split()
    assert int(listening[2]) == web_server.BACKLOG > 5  # ss: a listening socket's Send-Q is its backlog


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory: Path = tmp_path_factory.mktemp("web-tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], cwd=directory, check=True, capture_output=True,
                   timeout=60)
    return directory


def test_tls_from_the_grpc_certificate_and_a_session_over_it(
        make_app: Callable[..., App], certificate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(metrics_listen="127.0.0.1:0", tls_cert=str(certificate / "cert.pem"),
                   tls_key=str(certificate / "key.pem"))
    trust = ssl.create_default_context(cafile=str(certificate / "cert.pem"))
    own = f"https://127.0.0.1:{app.metrics_port}"
    assert _request(f"{own}/metrics", context=trust)[0] == 200
    link, secret = _login(app, capsys, context=trust)
    assert link.startswith(f"{own}/login#code=")  # `advisor ui` reads the scheme the advisor published
    status, _, body = _request(f"{own}/api/v1/session", context=trust, Authorization=f"Bearer {secret}")
    assert status == 200 and json.loads(body)["via"] == "session"

    # Plain HTTP on the TLS port, and silent clients that never start their handshake: refused without holding up
    # anyone (the handshake happens in a worker, under the deadline, not in the thread that accepts).
    assert _status(f"http://127.0.0.1:{app.metrics_port}/metrics") in (0, 400)
    silent = [socket.create_connection(("127.0.0.1", app.metrics_port)) for _ in range(8)]
    started = time.monotonic()
    assert _request(f"{own}/metrics", context=trust)[0] == 200
    assert time.monotonic() - started < 5
    for sock in silent:
        sock.close()
    assert _metric(own, "advisor_http_refusals_total", trust)['{reason="tls_handshake"}'] >= 1


pki = test_tls.pki  # a CA, a server certificate for 127.0.0.1, client certificates sched-1 and stranger


def test_client_certificates_on_the_web_listener_when_its_setting_asks(
        make_app: Callable[..., App], pki: Path, certificate: Path, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    tls = {"metrics_listen": "127.0.0.1:0", "tls_cert": str(pki / "server.pem"), "tls_key": str(pki / "server.key"),
           "tls_client_ca": str(pki / "ca.pem")}
    trust = ssl.create_default_context(cafile=str(pki / "ca.pem"))  # the server's CA, no client certificate

    def holding(name: str, directory: Path = pki) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        context.load_cert_chain(str(directory / f"{name}.pem"), str(directory / f"{name}.key"))
        return context

    grpc_only = make_app(data_dir=tmp_path / "grpc-only", **tls)  # tls_client_ca alone is gRPC's
    assert _request(f"https://127.0.0.1:{grpc_only.metrics_port}/metrics", context=trust)[0] == 200
    grpc_only.stop()

    app = make_app(data_dir=tmp_path / "mutual", web_client_certificates=True, **tls)
    own = f"https://127.0.0.1:{app.metrics_port}"
    signed = holding("sched-1")
    assert _request(f"{own}/metrics", context=signed)[0] == 200  # any certificate of the CA: Prometheus's too
    _, secret = _login(app, capsys, context=signed)  # the page keeps its own login behind the handshake
    assert _request(f"{own}/api/v1/session", context=signed, Authorization=f"Bearer {secret}")[0] == 200
    # Without a certificate, or with one the CA did not sign, nothing is answered: not /metrics, not the page,
    # and a session's secret is worth nothing.
    (certificate / "self.pem").write_bytes((certificate / "cert.pem").read_bytes())
    (certificate / "self.key").write_bytes((certificate / "key.pem").read_bytes())
    for context in (trust, holding("self", certificate)):
        for path in ("/metrics", "/", "/api/v1/session"):
            assert _status(f"{own}{path}", context=context, Authorization=f"Bearer {secret}") == 0, path
    assert _metric(own, "advisor_http_refusals_total", signed)['{reason="tls_handshake"}'] >= 6

    with pytest.raises(ConfigError, match="web_client_certificates needs"):
        make_app(data_dir=tmp_path / "no-ca", web_client_certificates=True, metrics_listen="127.0.0.1:0",
                 tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"))


def test_the_page_beyond_loopback_needs_tls_or_its_own_setting(make_app: Callable[..., App]) -> None:
    grpc_only = make_app(metrics_listen="0.0.0.0:0", allow_plaintext_remote=True)  # meant for gRPC: not the page
    assert _status(f"http://127.0.0.1:{grpc_only.metrics_port}/") == 403
    assert _status(f"http://127.0.0.1:{grpc_only.metrics_port}/metrics") == 200
    grpc_only.stop()
    page = make_app(metrics_listen="0.0.0.0:0", web_allow_plaintext_remote=True)
    assert _status(f"http://127.0.0.1:{page.metrics_port}/") == 200  # served, its JSON behind its login
    assert _status(f"http://127.0.0.1:{page.metrics_port}/api/v1/session") == 401
