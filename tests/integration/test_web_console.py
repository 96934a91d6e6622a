"""The page as an operator's console, in headless Chromium driven over the DevTools protocol against a real
advisor (the fake hypervisor behind it, migrations really executed: test_web's `loaded`): it leads with what needs
a decision and the cluster; it fits 1366x768 without horizontal scrolling, a "why" panel open included; the
cluster view lists every host with its load now and after the chosen recommendation, its VMs, its migrations;
proposals are grouped per VM with the superseded folded; the plots carry the diagonal corner to corner and the
p10-p90 bars, and their times are UTC in a browser whose local time is not; an advisor with nothing to show folds
its sections to one line each; a login link can open a move's "why" panel."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.domain.access import Role
from tests.integration import test_web
from tests.integration.test_web import COLOURS, Loaded, _get, _rows, _ui
from tests.support.chromium import Browser

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 1366, 768
GREY = (0x8C, 0x95, 0x9F)  # the diagonal's colour (static/plots.js)
SCATTERS = {"plot-time": "time", "plot-downtime": "downtime", "plot-data": "data"}
loaded = test_web.loaded  # the same advisor: 8 executed migrations, proposals, a drain plan, one held running


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    monkeypatch.setenv("TZ", "America/New_York")  # the browser's local time is not UTC: the page must not show it
    opened = Browser(tmp_path / "profile", WIDTH, HEIGHT)
    yield opened
    opened.close()


def _open(browser: Browser, url: str) -> None:
    browser.open(url)
    drawn_ms = browser.wait_for("document.body && document.body.dataset.drawnMs")
    browser.wait_for("document.querySelectorAll('#cluster-rows tr').length > 0")
    requests = browser.evaluate("performance.getEntriesByType('resource').length + 1")  # and the page
    print(f"first round drawn {drawn_ms} ms after the page's navigation began (after the login page; {requests} "
          "requests)")


def _overflow(browser: Browser) -> int:
    """How far the page reaches beyond the window's width (0: no horizontal scrolling)."""
    return int(browser.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def _percent(ratio: float) -> str:
    return f"{int(ratio * 100 + 0.5)}%"  # as JavaScript's toFixed(0) rounds halves: up


def _near(pixel: bytes, colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    return sum(abs(a - b) for a, b in zip(pixel, colour, strict=True)) < tolerance


def test_the_console_leads_with_decisions_and_the_cluster_and_fits_1366(
        loaded: Loaded, capsys: pytest.CaptureFixture[str], browser: Browser) -> None:
    _open(browser, _ui(loaded, capsys))
    assert browser.evaluate("[...document.querySelectorAll('p.error')].map(p => p.textContent)") == []
    # First what needs a decision, then the cluster, both starting on the first screen.
    order = browser.evaluate("[...document.querySelectorAll('main > section')].map(s => s.id)")
    assert order[:4] == ["decisions", "cluster", "drain", "running"]
    assert browser.evaluate("document.getElementById('cluster').getBoundingClientRect().top") < HEIGHT - 100
    decisions = browser.evaluate("document.getElementById('decisions-rows').textContent")
    assert loaded.proposed in decisions and loaded.plan in decisions
    assert _overflow(browser) == 0

    # Every host, with CPU and memory now and after the plan shown by default (the newest proposal).
    reader = loaded.app.tokens.renew("script", Role.READER)
    base = f"http://127.0.0.1:{loaded.app.metrics_port}/api/v1"
    doc = json.loads(_get(f"{base}/cluster?recommendation_id={loaded.plan}", token=reader)[2])
    rows = browser.evaluate("[...document.querySelectorAll('#cluster-rows tr')].map(r => "
                            "[...r.cells].map((c, i) => i ? c.textContent : c.innerText))")
    assert [r[0].split()[0] for r in rows] == [h.host.id for h in loaded.api.list_hosts()] == ["a", "b", "c"]
    after = browser.evaluate("document.getElementById('cluster-after').textContent")
    assert loaded.plan in after and after.startswith("3 hosts; ") and "(s)" not in after
    drained = next(h for h in doc["hosts"] if h["vmCountAfter"] == 0 and h["vmCount"] > 0)
    for row, host in zip(rows, doc["hosts"], strict=True):
        cpu, memory, vms, running = row[1], row[2], row[4], row[5]
        # CPU: the host's own sample as `advisor hosts` shows it; the planner's count below where it differs
        sampled = next(h for h in loaded.api.list_hosts() if h.host.id == host["hostId"])
        shown = _percent(sampled.cpu_utilization_ratio) if sampled.HasField("cpu_utilization_ratio") else "no sample"
        assert cpu.strip().startswith(shown) and host.get("cpuMeasuredRatio") == (
            sampled.cpu_utilization_ratio if sampled.HasField("cpu_utilization_ratio") else None)
        if _percent(host["cpuRatio"]) != shown or _percent(host["cpuRatioAfter"]) != _percent(host["cpuRatio"]):
            assert f"planner: {_percent(host['cpuRatio'])}" in cpu, cpu
        else:
            assert "planner" not in cpu
        assert _percent(host["memoryRatio"]) in memory
        assert vms.split()[0] == str(host["vmCount"]) and all(vm in vms for vm in host["vmIds"])
        if host["hostId"] == drained["hostId"]:
            assert "→ 0%" in memory and f"{host['vmCount']} → 0 VMs" in vms
        moving = loaded.api.operation(loaded.running)
        if host["hostId"] in (moving.source_host_id, moving.target_host_id):
            assert moving.vm_id in running
    assert sum(h["vmCount"] for h in doc["hosts"]) == 4
    # Recent migrations per host: on a, every ended one into or out of it.
    operations = {o["operationId"]: o for o in doc["operations"]}
    recent_a = [operations[i] for i in doc["hosts"][0]["recentOperationIds"]]
    assert {o["operationId"] for o in recent_a} == {
        o.operation_id for o in loaded.api.list_migrations(running_only=False)
        if o.operation_id in loaded.executed and "a" in (o.source_host_id, o.target_host_id)}
    into = sum(o["targetHostId"] == "a" for o in recent_a)
    assert f"{into} in, {len(recent_a) - into} out" in rows[0][6], rows[0][6]

    # Choosing the other proposal shows the cluster after it.
    browser.evaluate(f"document.querySelector('input[name=on-cluster][value=\"{loaded.proposed}\"]').click()")
    browser.wait_for(f"document.getElementById('cluster-after').textContent.includes('{loaded.proposed}')")

    # Proposals grouped per VM: v1's superseded proposal is folded, one click shows it.
    folded = loaded.api.list_recommendations(pb.ListRecommendationsRequest(
        state=pb.RECOMMENDATION_STATE_SUPERSEDED)).recommendations[0].id
    table = "document.getElementById('recs-rows').textContent"
    assert folded not in browser.evaluate(table) and "vm v1:" in browser.evaluate(table)
    browser.evaluate("[...document.querySelectorAll('#recs-rows button.fold')][0].click()")
    browser.wait_for(f"{table}.includes('{folded}')")
    # Its move never started and never will: it shows the proposal's end, not "waiting".
    badges = browser.evaluate(f"[...document.querySelectorAll('#recs-rows tr')].filter(r => r.textContent.includes("
                              f"'{folded}')).flatMap(r => [...r.querySelectorAll('.badge')].map(b => [b.textContent,"
                              " b.title]))")
    assert badges == [["superseded", ""], ["superseded", "never started: the recommendation was superseded"]], badges

    # A "why" panel open: its prose wraps inside the window.
    browser.evaluate("[...document.querySelectorAll('#recs-rows button')].find(b => b.textContent === 'why').click()")
    browser.wait_for("!!document.querySelector('#recs-rows tr.detail li')")
    browser.wait_for("!!document.querySelector('#recs-rows tr.detail .ruled-out tbody tr')")
    assert _overflow(browser) == 0
    assert browser.evaluate("(() => { const c = document.querySelector('#recs-rows tr.detail td');"
                            " return c.getBoundingClientRect().right <= window.innerWidth && "
                            "c.scrollWidth <= c.clientWidth; })()")

    # The plots: not blank, each point with its p10-p90 bar, the diagonal from corner to corner.
    page_height = int(browser.evaluate("document.documentElement.scrollHeight"))
    browser.resize(WIDTH, page_height)  # the whole page in one screenshot
    # Each figure's data, and its plotting area where it is now (the open panel moved it since it was drawn).
    figures = browser.evaluate("Object.fromEntries([...document.querySelectorAll('figure.plot')].map(f => {"
                               " const r = f.querySelector('.u-over').getBoundingClientRect();"
                               " return [f.id, {...f.dataset, bbox: [r.left + scrollX, r.top + scrollY, r.width,"
                               " r.height].map(Math.round).join(',')}]; }))")
    width, rows_png = _rows(browser.screenshot(), page_height - 1)
    assert width == WIDTH
    for name, quantity in SCATTERS.items():
        points, bars = int(figures[name]["points"]), int(figures[name]["bars"])
        assert points == 8 and bars == points, figures[name]
        x0, y0, w, h = (int(v) for v in figures[name]["bbox"].split(","))
        coloured = sum(_near(rows_png[y][3 * x:3 * x + 3], COLOURS[quantity])
                       for y in range(y0, y0 + h) for x in range(x0, x0 + w))
        assert coloured >= 40, (name, coloured)  # points and their bars
        for ends in ((0.01, 0.08), (0.92, 0.99)):  # the diagonal near both corners (it is dashed)
            steps = [ends[0] + (ends[1] - ends[0]) * k / 40 for k in range(41)]
            assert any(_near(rows_png[round(y0 + h * (1 - t)) + dy][3 * (round(x0 + w * t) + dx):
                                                                     3 * (round(x0 + w * t) + dx) + 3], GREY, 40)
                       for t in steps for dx in (-1, 0, 1) for dy in (-1, 0, 1)), (name, ends)

    # Times in UTC, in a browser whose local time is New York's.
    assert browser.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
    ends = {datetime.fromtimestamp(op.end_time.seconds, UTC).strftime("%H:%M")
            for op in loaded.api.list_migrations(running_only=False) if op.operation_id in loaded.executed}
    ticks = figures["plot-error"]["xTicks"].split(",")
    assert ticks and all(t[:5] in ends for t in ticks), (ticks, ends)
    history = browser.evaluate("document.getElementById('history-rows').textContent")
    assert all(e in history for e in ends)


def test_an_advisor_with_nothing_to_show_folds_its_sections_to_one_line(
        make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], browser: Browser) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir=data_dir, metrics_listen="127.0.0.1:0")
    client_for(app).push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id=h, cpu_cores=8, memory_mib=16384) for h in ("h1", "h2")],
        vms=[pb.Vm(id="v1", host_id="h1", memory_mib=1024, vcpus=1)]))
    loaded_empty = Loaded(app, client_for(app), data_dir, [], "", "", "")
    _open(browser, _ui(loaded_empty, capsys))
    heights = browser.evaluate("Object.fromEntries([...document.querySelectorAll('main > section')].map(s => "
                               "[s.id, [s.classList.contains('nothing'), s.getBoundingClientRect().height, "
                               "s.querySelector('h2').textContent]]))")
    for section in ("decisions", "running", "quality", "calibration", "history"):
        folded, height, title = heights[section]
        assert folded and height < 30, (section, heights[section])
        assert "no" in title.split(":", 1)[-1] or "none" in title, title  # the line says why it is empty
    rows = browser.evaluate("[...document.querySelectorAll('#cluster-rows tr')].map(r => r.cells[0].innerText)")
    assert [r.split()[0] for r in rows] == ["h1", "h2"]
    assert _overflow(browser) == 0
    assert os.environ["TZ"] == "America/New_York"


def test_what_was_never_measured_shows_as_unknown_never_as_0(
        make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], browser: Browser) -> None:
    world = FakeWorld(("a", "b"), cpu_cores=16, memory_mib=32768)
    for vm in ("v1", "v2"):
        world.add_guest(vm, "a", memory_mib=1024)
    data_dir = tmp_path / "data"
    app = make_app(data_dir=data_dir, connect=world.connect, poll_interval_s=0.01, metrics_listen="127.0.0.1:0")
    api = client_for(app)
    api.push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id=h, cpu_cores=16, memory_mib=32768, hypervisor_uri=f"fake://{h}") for h in "ab"],
        vms=[pb.Vm(id=vm, host_id="a", memory_mib=1024, vcpus=2) for vm in ("v1", "v2")]))
    ended = []
    for vm in ("v1", "v2"):
        if vm == "v2":
            del world.guests[vm]  # gone from its host: the move fails before it starts, nothing measured
        op = test_web._execute(api, vm).operation_id
        test_web._wait(lambda op=op: api.operation(op).phase in test_web.ENDED)  # type: ignore[misc]
        ended.append(api.operation(op))
    assert [o.phase for o in ended] == [pb.MIGRATION_PHASE_SUCCEEDED, pb.MIGRATION_PHASE_FAILED]
    assert not ended[1].outcome.HasField("total_time_ms") and not ended[1].outcome.HasField("downtime_ms")
    _open(browser, _ui(Loaded(app, api, data_dir, [o.operation_id for o in ended], "", "", ""), capsys))
    browser.wait_for("document.querySelectorAll('#history-rows tr').length === 2")
    cells = browser.evaluate("Object.fromEntries([...document.querySelectorAll('#history-rows tr')].map(r => "
                             "[r.cells[2].innerText, [...r.cells].slice(6).map(c => c.innerText.split('\\n')[0])]))")
    assert cells["v2"] == ["-", "-", "-"], cells  # was 0.00 s, 0.00 ms, 0.00 MiB
    assert all(value != "-" for value in cells["v1"]), cells
    quantiles = browser.wait_for("document.getElementById('quantiles').textContent")
    assert "of the 1 succeeded move among 2 operations" in quantiles, quantiles


def test_a_dry_run_drain_shows_each_host_after_it_with_disks_and_networks(
        make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], browser: Browser) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir=data_dir, metrics_listen="127.0.0.1:0")
    api = client_for(app)
    local = pb.Disk(target="vda", size_mib=10240, used_mib=4096)  # copied with its VM: 10 GiB on the target
    shared = pb.Disk(target="vdb", size_mib=102400, used_mib=51200, shared=True)
    many = [f"provider-network-{k:02d}" for k in range(20)]  # on h3: they must not widen the page
    api.push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id=h, cpu_cores=16, memory_mib=32768, networks=["br0", "vlan10", *(many if h == "h3" else [])],
                       local_disk_free_mib=102400) for h in ("h1", "h2", "h3")],
        vms=[pb.Vm(id="v1", host_id="h1", memory_mib=2048, vcpus=2, networks=["vlan10"], disks=[local, shared]),
             pb.Vm(id="v2", host_id="h1", memory_mib=4096, vcpus=2, networks=["br0"]),
             pb.Vm(id="v3", host_id="h2", memory_mib=1024, vcpus=1)]))
    _open(browser, _ui(Loaded(app, api, data_dir, [], "", "", ""), capsys))
    cells = ("[...document.querySelectorAll('#cluster-rows tr.host')].map(r => [...r.cells].map(c => c.innerText))")
    assert "networks: br0, vlan10" in browser.evaluate(cells)[0][0]
    titles = browser.evaluate("[...document.querySelectorAll('#cluster-rows .nets')].map(n => n.title)")
    assert titles[2].endswith("provider-network-19, vlan10")
    assert _overflow(browser) == 0
    assert browser.evaluate("document.getElementById('drain').classList.contains('nothing')")

    # A host's "drain?" button: the cluster after the dry run, the moves in and out, the plan listed below.
    browser.evaluate("document.querySelector('button[aria-label=\"preview a drain of h1\"]').click()")
    browser.wait_for("document.getElementById('cluster-after').textContent.includes('dry-run drain of h1')")
    browser.wait_for("document.querySelectorAll('#drain-rows tr').length === 2")
    reader = app.tokens.renew("script", Role.READER)
    doc = json.loads(_get(f"http://127.0.0.1:{app.metrics_port}/api/v1/cluster?drain_host_id=h1", token=reader)[2])
    moves = {m["vmId"]: m["targetHostId"] for m in doc["plan"]["moves"]}
    assert set(moves) == {"v1", "v2"}
    rows = browser.evaluate(cells)
    h1, *targets = rows
    assert "2 → 0 VMs" in h1[4] and "out 2:" in h1[4] and f"v1 → {moves['v1']}" in h1[4]
    assert "→ 0%" in h1[2]  # memory: every VM gone
    for row in targets:
        host = row[0].split()[0]
        into = [vm for vm, target in moves.items() if target == host]
        assert (f"in {len(into)}:" in row[4]) == bool(into), row
        # v1's local disk takes 10 GiB of the 100 GiB free where it goes; the shared one takes nothing
        assert row[3] == ("100 GiB → 90.0 GiB" if "v1" in into else "100 GiB"), row
    drain = browser.evaluate("document.getElementById('drain-rows').innerText")
    assert all(f"{vm}\th1 → {target}" in drain for vm, target in moves.items()), drain
    assert "dry run: nothing stored" in browser.evaluate("document.getElementById('drain-count').textContent")
    assert list(api.list_recommendations(pb.ListRecommendationsRequest()).recommendations) == []
    assert browser.evaluate("!!document.querySelector('input[name=on-cluster]:checked')") is False

    # A host's VMs, opened: each with its disks (size, used, shared or local) and networks.
    browser.evaluate("document.querySelector('details.vm-list[data-host=h1] summary').click()")
    browser.wait_for("!!document.querySelector('tr.vms-of[data-host=h1] .vms tbody tr')")
    vms = browser.evaluate("[...document.querySelectorAll('tr.vms-of[data-host=h1] .vms tbody tr')]"
                           ".map(r => [...r.cells].map(c => c.textContent))")
    assert vms == [["v1", "2", "2.0 GiB", "vda 10.0 GiB (4.0 GiB used) local; vdb 100 GiB (50.0 GiB used) shared",
                    "vlan10"], ["v2", "2", "4.0 GiB", "all shared (none reported)", "br0"]]
    assert _overflow(browser) == 0

    # A host typed that does not exist: said in the drain section, the cluster shown as it is now.
    browser.evaluate("document.getElementById('drain-host').value = 'nosuch';"
                     " document.getElementById('drain-go').click()")
    browser.wait_for("document.getElementById('drain-count').textContent.startsWith('none: nosuch')")
    assert "dry-run" not in browser.evaluate("document.getElementById('cluster-after').textContent")
    assert browser.evaluate("document.querySelector('details.vm-list[data-host=h1]').open")  # still open


def test_a_login_link_can_open_a_moves_why_panel(loaded: Loaded, capsys: pytest.CaptureFixture[str],
                                                browser: Browser) -> None:
    # `advisor ui`'s link with `&why=REC/MOVE` after its code: the login page logs in, then opens /#why=REC/MOVE.
    _open(browser, f"{_ui(loaded, capsys)}&why={loaded.proposed}/0")
    assert browser.evaluate("decodeURIComponent(location.hash)") == f"#why={loaded.proposed}/0"
    browser.wait_for("!!document.querySelector('#recs-rows tr.detail li')")
    assert browser.evaluate("sessionStorage.length") == 1  # the secret, nothing else; the code is gone
