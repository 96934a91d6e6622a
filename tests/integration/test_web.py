"""The web page against a real advisor (the fake hypervisor behind it, migrations really executed): the login
rules over plain HTTP, then the page in headless Chromium (Debian's `chromium`, installed by scripts/setup.sh):
its tables filled from the server, its plots drawn (pixels in the screenshot), and a used login link refused.
The session is a bearer secret the login page keeps in the origin's sessionStorage, never a cookie."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli.main import main
from advisor.domain.access import Role

pytestmark = pytest.mark.integration

SIZES = {"v1": 1024, "v2": 2048, "v3": 4096, "v4": 8192}
ENDED = (pb.MIGRATION_PHASE_SUCCEEDED, pb.MIGRATION_PHASE_FAILED, pb.MIGRATION_PHASE_ABORTED)
WINDOW = (1400, 2400)  # tall enough for the whole page, the plots included, in one screenshot
# The plots' colours (static/plots.js) and where each is drawn.
COLOURS = {"time": (0x1F, 0x5F, 0xBF), "downtime": (0xC6, 0x28, 0x28), "data": (0x1A, 0x7F, 0x37)}
PLOTS = {"plot-time": ["time"], "plot-downtime": ["downtime"], "plot-data": ["data"],
         "plot-error": ["time", "downtime", "data"]}


@dataclass
class Loaded:
    app: App
    api: AdvisorClient
    data_dir: Path
    executed: list[str]  # operations that ended
    proposed: str
    plan: str
    running: str  # an operation held running by the gated world


@pytest.fixture
def loaded(make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], tmp_path: Path) -> Iterator[Loaded]:
    """An advisor with a history: 8 executed migrations of guests of 4 sizes, a proposed recommendation, a
    proposed drain plan, and one migration held running."""
    world = FakeWorld(("a", "b", "c"), cpu_cores=16, memory_mib=32768)
    for vm, size in SIZES.items():
        world.add_guest(vm, "a", memory_mib=size)
    data_dir = tmp_path / "data"
    app = make_app(data_dir=data_dir, connect=world.connect, poll_interval_s=0.01, metrics_listen="127.0.0.1:0")
    api = client_for(app)
    api.push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id=h, cpu_cores=16, memory_mib=32768, hypervisor_uri=f"fake://{h}") for h in "abc"],
        vms=[pb.Vm(id=vm, host_id="a", memory_mib=size, vcpus=2) for vm, size in SIZES.items()]))
    executed = []
    for _ in range(2):
        for i, vm in enumerate(SIZES):
            world.migration_s = 0.02 * (i + 1)  # actual times that differ
            op = _execute(api, vm).operation_id
            _wait(lambda op=op: api.operation(op).phase in ENDED)  # type: ignore[misc]
            executed.append(op)
    api.recommend(pb.RecommendTargetRequest(vm_id="v1"))  # superseded by the next
    proposed = api.recommend(pb.RecommendTargetRequest(vm_id="v1")).id
    busiest = max(api.list_hosts(), key=lambda h: h.vm_count).host.id
    plan: pb.Recommendation = api.call(api.recommendations.PlanCluster, pb.PlanClusterRequest(  # type: ignore[assignment]
        goal=pb.CLUSTER_GOAL_DRAIN, host_id=busiest))
    world.release.clear()
    running = _execute(api, "v2").operation_id
    _wait(lambda: api.operation(running).phase in (pb.MIGRATION_PHASE_PRECOPY, pb.MIGRATION_PHASE_POSTCOPY))
    yield Loaded(app, api, data_dir, executed, proposed, plan.id, running)
    world.release.set()  # the held migration ends before the advisor stops


def _execute(api: AdvisorClient, vm: str) -> pb.Operation:
    rec = api.recommend(pb.RecommendTargetRequest(vm_id=vm))
    api.decide(rec.id, True)
    op = api.execute(rec.id)
    return op


def _wait(done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _ui(loaded: Loaded, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["ui", "--data-dir", str(loaded.data_dir)]) == 0
    out, err = capsys.readouterr()
    assert "works once" in err
    return out.strip()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _get(url: str, *, token: str = "", method: str = "GET", body: bytes | None = None,
         cookie: str = "") -> tuple[int, Any, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if cookie:
        headers["Cookie"] = cookie
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _log_in(link: str) -> tuple[int, Any, dict[str, Any]]:
    """What the login page does with a link: post the code of its fragment. The status, headers and answer."""
    base, _, fragment = link.partition("#")
    status, headers, body = _get(base, method="POST", body=json.dumps({"code": fragment.removeprefix("code=")
                                                                       }).encode())
    return status, headers, json.loads(body)


def _as_dict(message: Any) -> Any:
    return json_format.MessageToDict(message)


def test_login_sessions_tokens_and_hostile_input_over_plain_http(loaded: Loaded,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{loaded.app.metrics_port}"
    api = f"{base}/api/v1"
    # No data without a session but /metrics, which Prometheus scrapes as before; the page's code and style are
    # served to anyone (the JSON they read needs the session).
    status, headers, body = _get(f"{base}/")
    assert status == 200 and b'<script src="/static/app.js"' in body and "Set-Cookie" not in headers
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    status, headers, body = _get(f"{base}/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    assert _get(f"{base}/static/uPlot.iife.min.js")[0] == 200
    assert _get(f"{base}/static/README.md")[0] == 404  # only the page's files are served
    status, headers, body = _get(f"{api}/recommendations")
    assert status == 401 and headers["Content-Type"] == "application/json" and "advisor ui" in json.loads(body)["login"]
    status, _, body = _get(f"{base}/metrics")
    assert status == 200 and b'grpc_server_handled_total{grpc_code="OK",grpc_method="PushInventory",' in body

    url = _ui(loaded, capsys)
    assert url.startswith(f"{base}/login#code=")  # in the fragment: never sent, in no request line or log
    status, headers, body = _get(url)  # opening the link: the login page, nothing used
    assert status == 200 and b"/static/login.js" in body and "Set-Cookie" not in headers
    status, headers, doc = _log_in(url)  # what the login page does: post the code, get the session's secret
    assert status == 200 and "Set-Cookie" not in headers and headers["Cache-Control"] == "no-store"
    session = doc["session"]
    assert len(session) == 43 and doc["expireTime"].endswith("Z")
    status, headers, doc = _log_in(url)  # a used link opens nothing
    assert status == 401 and "session" not in doc and "used already" in doc["error"]
    assert "advisor ui --data-dir DIR" in doc["login"] and str(loaded.data_dir) not in json.dumps(doc)
    # The session is a bearer secret, never a cookie.
    assert _get(f"{api}/session", cookie=f"advisor_session_{loaded.app.metrics_port}={session}")[0] == 401
    status, _, body = _get(f"{api}/session", token=session)
    assert status == 200 and json.loads(body)["via"] == "session"

    # The JSON is the API's own mapping of the API's own messages.
    status, headers, body = _get(f"{api}/recommendations?page_size=50", token=session)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    listed = loaded.api.list_recommendations(pb.ListRecommendationsRequest(page_size=50))
    assert json.loads(body) == _as_dict(listed)
    ids = [r["id"] for r in json.loads(body)["recommendations"]]
    assert loaded.proposed in ids and loaded.plan in ids
    status, _, body = _get(f"{api}/recommendations?state=superseded", token=session)
    assert [r["supersededBy"] for r in json.loads(body)["recommendations"]] == [loaded.proposed]
    status, _, body = _get(f"{api}/recommendation?id={loaded.plan}", token=session)
    assert json.loads(body) == _as_dict(loaded.api.get_recommendation(loaded.plan))
    status, _, body = _get(f"{api}/assessments?recommendation_id={loaded.proposed}&move_index=0", token=session)
    assert [a["hostId"] for a in json.loads(body)["assessments"]] == [
        a.host_id for a in loaded.api.list_assessments(loaded.proposed, 0)]
    status, _, body = _get(f"{api}/migrations?page_size=500", token=session)
    ended = {o["operationId"]: o for o in json.loads(body)["operations"] if o["operationId"] in loaded.executed}
    assert ended == {o.operation_id: _as_dict(o) for o in loaded.api.list_migrations(running_only=False)
                     if o.operation_id in loaded.executed}
    assert len(ended) == 8
    status, _, body = _get(f"{api}/migrations?running_only=true", token=session)
    assert [o["operationId"] for o in json.loads(body)["operations"]] == [loaded.running]
    status, _, body = _get(f"{api}/progress?operation_id={loaded.running}", token=session)
    progress = json.loads(body)
    assert status == 200 and progress["operationId"] == loaded.running and "estimate" in progress
    assert progress["phase"] in ("MIGRATION_PHASE_PRECOPY", "MIGRATION_PHASE_POSTCOPY")
    before = len(loaded.api.list_recommendations(pb.ListRecommendationsRequest()).recommendations)
    status, _, body = _get(f"{api}/drain?host_id=a", token=session)
    assert status == 200 and "id" not in json.loads(body) and json.loads(body)["goal"].startswith("drain")
    # The cluster after a dry-run drain: the plan, and each host's load after it, stored nowhere either.
    status, _, body = _get(f"{api}/cluster?drain_host_id=a", token=session)
    preview = json.loads(body)
    assert status == 200 and preview["drainHostId"] == "a" and "recommendationId" not in preview
    assert "id" not in preview["plan"] and preview["plan"]["goal"].startswith("drain")
    moved = {m["vmId"] for m in preview["plan"]["moves"]}
    a, *others = preview["hosts"]
    assert {m["vmId"] for m in a["movesOut"]} == moved and a["vmCountAfter"] == a["vmCount"] - len(moved)
    assert {m["vmId"] for h in others for m in h.get("movesIn", [])} == moved and preview["movesApplied"] == len(moved)
    assert len(loaded.api.list_recommendations(pb.ListRecommendationsRequest()).recommendations) == before
    status, _, body = _get(f"{api}/vms?host_id=a", token=session)
    assert json.loads(body) == _as_dict(loaded.api.call(loaded.api.inventory.ListVms, pb.ListVmsRequest(host_id="a")))
    status, _, body = _get(f"{api}/models", token=session)
    models = json.loads(body)
    assert models["costModel"]["version"] == loaded.app.predictor.model.version and models["calibration"]
    assert {e["technique"] for e in models["calibration"]} <= set(pb.Technique.keys())

    # Every parameter is checked: 400 naming it, 404 for what does not exist, 405 for anything but reading.
    for query, parameter in (("recommendations?page_size=abc", "page_size"), ("recommendations?page_size=0",
                             "page_size"), ("recommendations?state=bogus", "state"), ("recommendation?id=a%00b", "id"),
                             ("recommendation", "id"), ("recommendations?page_token=garbage", "page_token"),
                             (f"assessments?recommendation_id={loaded.proposed}&move_index=7", "move_index"),
                             ("recommendations?x=1", "x"), ("recommendations?state=proposed&state=expired", "state"),
                             (f"cluster?recommendation_id={loaded.plan}&drain_host_id=a", "drain_host_id")):
        status, headers, body = _get(f"{api}/{query}", token=session)
        assert (status, json.loads(body)["parameter"]) == (400, parameter), query
    for query, parameter in (("recommendation?id=nosuch", "id"), ("migration?operation_id=nosuch", "operation_id"),
                             ("drain?host_id=nosuch", "host_id"), ("cluster?drain_host_id=nosuch", "drain_host_id"),
                             ("cluster?recommendation_id=nosuch", "recommendation_id"),
                             ("vms?host_id=nosuch", "host_id")):
        status, _, body = _get(f"{api}/{query}", token=session)
        assert (status, json.loads(body)["parameter"]) == (404, parameter), query
        assert json.loads(body)["error"].startswith(f"{parameter}: unknown"), query
    assert _get(f"{api}/nosuch", token=session)[0] == 404
    status, headers, _ = _get(f"{api}/recommendations", token=session, method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"

    # Scripts read the JSON with a bearer token of any role; never the page.
    reader = loaded.app.tokens.renew("script", Role.READER)
    assert _get(f"{api}/recommendations", token=reader)[0] == 200
    assert _get(f"{api}/recommendations", token=reader + "x")[0] == 401
    status, _, body = _get(f"{api}/session", token=reader)
    assert json.loads(body) == {"name": "script", "role": "reader", "via": "token"}

    # A revoked token ends its sessions at once (from another process: the CLI writes the database).
    assert main(["tokens", "revoke", "web", "--data-dir", str(loaded.data_dir)]) == 0
    status, _, body = _get(f"{api}/models", token=session)
    assert status == 401 and "revoked" in json.loads(body)["error"]
    fresh = _ui(loaded, capsys)  # a new token named web: the old session stays ended, the new one works
    session2 = _log_in(fresh)[2]["session"]
    assert _get(f"{api}/session", token=session)[0] == 401 and _get(f"{api}/session", token=session2)[0] == 200
    assert _get(f"{base}/logout", token=session2)[0] == 405 and _get(f"{api}/session", token=session2)[0] == 200
    status, _, body = _get(f"{base}/logout", token=session2, method="POST", body=b"")
    assert status == 200 and json.loads(body) == {"ended": True}
    assert _get(f"{api}/session", token=session2)[0] == 401
    assert json.loads(_get(f"{base}/logout", token=session2, method="POST", body=b"")[2]) == {"ended": False}

    metrics = _get(f"{base}/metrics")[2].decode()
    assert 'advisor_http_requests_total{code="401",route="login"}' in metrics
    assert 'advisor_http_requests_total{code="200",route="api/recommendations"}' in metrics
    audit = [(e.call, e.actor, e.outcome) for e in loaded.app.audit.recent(100) if e.call.startswith("Web/")]
    assert ("Web/Login", "web", "OK") in audit and ("Web/Login", "anonymous", "UNAUTHENTICATED") in audit


def test_ui_says_clearly_when_no_advisor_serves_the_directory(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--data-dir", str(tmp_path)]) == 2
    assert f"no advisor is serving {tmp_path}" in capsys.readouterr().err
    assert main(["ui", "--data-dir", str(tmp_path), "--base-url", "http://127.0.0.1:1"]) == 2
    assert "no advisor database" in capsys.readouterr().err
    published = tmp_path / "advisor.json"
    published.write_text(json.dumps({"pid": os.getpid(), "metrics": "", "grpc": "127.0.0.1:1"}))
    assert main(["ui", "--data-dir", str(tmp_path)]) == 2
    assert "has no web listener" in capsys.readouterr().err
    published.write_text(json.dumps({"pid": os.getpid(), "metrics": "0.0.0.0:9464", "web_page": False}))
    assert main(["ui", "--data-dir", str(tmp_path)]) == 2
    assert "does not serve the web page" in capsys.readouterr().err


def test_the_listener_stops_at_once_and_leaves_no_thread(make_app: Callable[..., App]) -> None:
    app = make_app(metrics_listen="127.0.0.1:0")
    port = app.metrics_port
    idle = socket.create_connection(("127.0.0.1", port))  # a client that never sends its request
    assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    time.sleep(0.2)
    started = time.monotonic()
    app.stop()
    assert time.monotonic() - started < 3
    assert not [t.name for t in threading.enumerate() if t.name.startswith(("web", "CP Server"))]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    idle.close()


# -- the page in a real browser -------------------------------------------------------------------------------


def _chromium(tmp_path: Path, url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium")
    assert browser, "chromium is missing: scripts/setup.sh installs Debian's chromium package"
    profile = tmp_path / f"profile-{time.monotonic_ns()}"  # a fresh browser each time: nothing carried over
    return subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         "--virtual-time-budget=5000", *flags, url],
        capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path)


class _Figures(HTMLParser):
    """The plots' figures, with their data attributes; and every element's classes."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, str]] = {}
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.classes += found.get("class", "").split()
        if tag == "figure" and found.get("id", "").startswith("plot-"):
            self.figures[found["id"]] = found


def _rows(png: bytes, last_row: int) -> tuple[int, list[bytes]]:
    """The RGB rows of a PNG screenshot (8-bit RGB or RGBA, not interlaced) down to `last_row`."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, channels = 8, b"", 0, 3
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(last_row + 1):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride) if kind else ():
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            else:
                p = left + up - corner
                pa, pb_, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb_ and pa <= pc else up if pb_ <= pc else corner)) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = line
    return width, rows


def test_the_page_in_headless_chromium(loaded: Loaded, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    started = time.monotonic()
    dom = _chromium(tmp_path, _ui(loaded, capsys), "--dump-dom").stdout
    load_s = time.monotonic() - started
    page = _Figures()
    page.feed(dom)
    # Filled from the server: the recommendations, the operations, the model; no error anywhere.
    assert "Login required" not in dom and "error" not in page.classes, dom[:2000]
    for ident in (loaded.proposed, loaded.plan, loaded.running, *loaded.executed[-4:]):
        assert ident in dom
    assert loaded.app.predictor.model.version in dom and "proposed" in dom and "succeeded" in dom
    assert "+ 1 superseded" in dom and '<option value="superseded">' in dom  # folded under v1's group
    assert "Downtime of the 8 succeeded moves" in dom and "p99" in dom
    boxes = {}
    for name in PLOTS:
        figure = page.figures[name]
        assert int(figure.get("data-points", "0")) > 0, figure
        boxes[name] = [int(v) for v in figure["data-bbox"].split(",")]

    shot = tmp_path / "page.png"
    _chromium(tmp_path, _ui(loaded, capsys), f"--screenshot={shot}")
    width, rows = _rows(shot.read_bytes(), max(y + h for _, y, _, h in boxes.values()))
    assert width == WINDOW[0]
    for name, (x0, y0, w, h) in boxes.items():
        inked, near = 0, dict.fromkeys(PLOTS[name], 0)
        for y in range(y0, y0 + h):
            row = rows[y]
            for x in range(x0, x0 + w):
                pixel = row[3 * x:3 * x + 3]
                if pixel != b"\xff\xff\xff":
                    inked += 1
                for colour in near:
                    if sum(abs(a - b) for a, b in zip(pixel, COLOURS[colour], strict=True)) < 60:
                        near[colour] += 1
        assert inked > 0.01 * w * h, (name, inked)  # neither blank ...
        assert all(n >= 20 for n in near.values()), (name, near)  # ... nor without its points

    # A used login link, opened again in a fresh browser, shows the login-required page.
    used = _ui(loaded, capsys)
    _chromium(tmp_path, used, "--dump-dom")
    refused = _chromium(tmp_path, used, "--dump-dom").stdout
    assert "Login required" in refused and "used already" in refused
    assert "advisor ui --data-dir DIR" in refused
    print(f"page loaded and rendered in {load_s:.1f} s (chromium start included)")
