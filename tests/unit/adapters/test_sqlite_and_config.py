from __future__ import annotations

import dataclasses
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from advisor.adapters.sql.database import StorageError
from advisor.adapters.sqlite.db import SqliteDatabase, SqliteStore
from advisor.config import Settings, load_settings
from advisor.config_ranges import RANGES
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import ConfigError
from advisor.domain.model import Host, Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique, Vm
from advisor.domain.recommendation import Recommendation, RecommendationState


def test_settings_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text('[advisor]\nlisten = "127.0.0.1:6000"\nmax_concurrent_calls = 3\ndata_dir = "/srv/a"\n'
                      'hypervisor_uri_patterns = ["qemu+tls://*.dc1/system"]\n'
                      'tls_client_roles = {"CN=sched" = "scheduler"}\n')
    settings = load_settings(
        config, {"ADVISOR_LISTEN": "127.0.0.1:7000", "ADVISOR_GRACE_S": "2.5", "HOME": "/root",
                 "ADVISOR_TOKEN": "client-side, not a setting", "ADVISOR_ALLOW_PLAINTEXT_REMOTE": "yes"},
        {"data_dir": "/x"}
    )
    assert settings.listen == "127.0.0.1:7000"
    assert settings.max_concurrent_calls == 3
    assert settings.hypervisor_uri_patterns == ("qemu+tls://*.dc1/system",)
    assert settings.tls_client_roles == {"CN=sched": "scheduler"}
    assert settings.allow_plaintext_remote is True
    assert settings.grace_s == 2.5
    assert settings.data_dir == Path("/x")


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ('lissten = "x"', {}, "unknown setting 'lissten'"),
        ("max_concurrent_calls = 2.5", {}, "max_concurrent_calls must be a whole number"),
        ("", {"ADVISOR_MAX_CONCURRENT_CALLS": "many"}, "ADVISOR_MAX_CONCURRENT_CALLS"),
        ("allow_plaintext_remote = 3", {}, "allow_plaintext_remote must be a boolean"),
        ("hypervisor_uri_patterns = [1]", {}, "hypervisor_uri_patterns must be a list of strings"),
        ("hypervisor_uri_patterns = ['no scheme']", {}, "not a hypervisor URI pattern"),
        ('tls_client_roles = {"CN=a" = "boss"}', {}, "unknown role 'boss'"),
        ("max_concurrent_streams = 0", {}, "max_concurrent_streams must be at least 1 .got 0."),
        ("", {"ADVISOR_RETENTION_DAYS": "-1"}, r"retention_days must be above 0 \(got -1.0\)"),
        ("", {"ADVISOR_AUDIT_RETENTION_DAYS": "-1"}, "audit_retention_days must be above 0"),
        ("retention_recommendations = 0", {}, "retention_recommendations must be at least 1"),
        ("", {"ADVISOR_PROMETHEUS_POLL_INTERVAL_S": "0"}, "prometheus_poll_interval_s must be at least 1"),
        ("grace_s = -1.0", {}, "grace_s must be at least 0"),
        ("placement_max_cpu_after = 0.0", {}, "placement_max_cpu_after must be above 0"),
        ("technique_risk = 1.5", {}, "technique_risk must be from 0 to 1"),
        ("monitor_stall_rounds = 0", {}, "monitor_stall_rounds must be at least 1"),
        ("", {"ADVISOR_RETENTION_DAYS": "nan"}, "retention_days must be above 0"),
        ("", {"ADVISOR_MAX_MESSAGE_MIB": "4096"}, "max_message_mib must be from 1 to 511 .got 4096."),
        ('listen = "127.0.0.1:99999"', {}, "listen must be HOST:PORT with a port from 0 to 65535, got '127.0.0.1:9"),
        ('metrics_listen = "127.0.0.1:99999"', {}, "metrics_listen must be HOST:PORT"),
        ('metrics_listen = "nohost"', {}, "metrics_listen must be HOST:PORT"),
        ("", {"ADVISOR_LOG_LEVEL": "verbose"}, "log_level must be debug, info, warning, error, got 'verbose'"),
        ('listen = "127.0.0.1:1"\n[advisor]\ngrace_s = 1.0', {}, "every setting goes in it; outside it: listen"),
        ('[advisor]\ngrace_s = 1.0\n[other]\nx = 1', {}, "outside it: other"),
        ("", {"ADVISOR_NOPE": "1"}, "unknown setting ADVISOR_NOPE"),
        ('log_format = "xml"', {}, "log_format"),
        ("listen = [", {}, "advisor.toml"),
        ('database_url = "mysql://db/advisor"', {}, "database_url must be empty .SQLite in data_dir. or a postgresql"),
    ],
)
def test_bad_settings_say_which_and_where(tmp_path: Path, text: str, env: dict[str, str], fragment: str) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        load_settings(config, env)


def test_every_numeric_setting_has_a_range_and_the_readme_says_it() -> None:
    readme = " ".join((Path(__file__).resolve().parents[3] / "README.md").read_text().split())
    for field in dataclasses.fields(Settings):
        if type(getattr(Settings(), field.name)) in (int, float):
            assert field.name in RANGES, field.name
            assert f"`{field.name}` {RANGES[field.name]}" in readme, field.name


def test_settings_read_from_the_advisor_table(tmp_path: Path) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text("[advisor]\ngrace_s = 2.0\n")
    assert load_settings(config, {}).grace_s == 2.0


def _recommendation(rec_id: str, created: float) -> Recommendation:
    cost = MigrationCost(
        Technique.POSTCOPY, Interval(1, 2, 3), Interval.exact(2), Interval(10, 11, 12), True,
        ModelRef("analytic", "1.0.0", "sensitivity band"), ("note",),
    )
    params = MigrationParameters(Technique.POSTCOPY, 100.0, 300.0, postcopy_after_ms=0.0, deadline_ms=1000.0)
    return Recommendation(rec_id, "target:v", created, (Move("v", "a", "b", params, cost, ("why",)),), "summary")


def test_inventory_and_recommendations_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = SqliteStore(path)
    hosts = (Host("a", 8, 1024, labels={"rack": "r1"}), Host("b", 8, 1024, in_maintenance=True))
    vms = (Vm("v", "a", 512, 2, anti_affinity_groups=frozenset({"g"}), postcopy_allowed=False),)
    store.apply_inventory(InventoryChange(hosts=hosts, vms=vms))
    recs = [_recommendation(f"r{i}", 1000.0 + i) for i in range(5)]
    for rec in recs:
        store.add_recommendation(rec)
    store.close()

    reopened = SqliteStore(path)
    assert reopened.load_inventory() == (list(hosts), list(vms))
    assert reopened.get_recommendation("r3") == recs[3]
    first = reopened.list_recommendations(None, 2)
    assert [r.id for r in first] == ["r4", "r3"]
    after = reopened.list_recommendations(None, 10, (first[-1].created_at_s, first[-1].id))
    assert [r.id for r in after] == ["r2", "r1", "r0"]
    assert reopened.list_recommendations(RecommendationState.APPROVED, 10) == []
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match="schema version 99"):
        SqliteStore(path)


def test_every_host_assessed_is_stored_as_columns_and_read_back_as_rows(tmp_path: Path) -> None:
    from advisor.domain.assessments import AssessedHosts, HostAssessment

    store = SqliteStore(tmp_path / "db.sqlite3")
    store.add_recommendation(_recommendation("r1", 1.0), {0: AssessedHosts(
        ("current host", "memory", "CPU headroom"), ("h3", "h1", "h2", "h0"), (0, 6, 0, 1), (0.75, None, 0.25, None),
        (0.5, 0.95, 0.25, 0.4), (0.5, 1.2, 0.3, 0.6))})
    rows = store.list_assessments("r1", 0)
    assert rows == [HostAssessment("h2", (), 0.25, 0.25, pytest.approx(0.3)),  # type: ignore[arg-type]
                    HostAssessment("h3", (), 0.75, 0.5, 0.5),
                    HostAssessment("h0", ("current host",), None, pytest.approx(0.4), pytest.approx(0.6)),  # type: ignore[arg-type]
                    HostAssessment("h1", ("memory", "CPU headroom"), None, pytest.approx(0.95), pytest.approx(1.2))]  # type: ignore[arg-type]


def test_assessments_stored_by_earlier_versions_are_still_read(tmp_path: Path) -> None:
    """Before binary columns, an assessments row was compressed JSON: of rows, or of columns packed in base64."""
    import base64
    import json
    import zlib
    from array import array

    from advisor.domain.assessments import HostAssessment

    def packed(kind: str, values: list[float]) -> str:
        return base64.b64encode(array(kind, values).tobytes()).decode()

    store = SqliteStore(tmp_path / "db.sqlite3")
    store.add_recommendation(_recommendation("r1", 1.0))
    columns = {"filters": ["memory", "cpu"], "host_ids": "a\nb", "rejected": packed("L", [2, 0]),
               "score": packed("d", [float("nan"), 0.5]), "cpu_after": packed("f", [0.25, 0.5]),
               "memory_after": packed("f", [0.75, 0.5])}
    rows = [["c", [], 0.5, 0.25, 0.5]]
    for index, body in enumerate((columns, rows)):
        store.database.connection.execute("INSERT INTO assessments VALUES ('r1', ?, ?)",
                                          (index, zlib.compress(json.dumps(body).encode())))
    assert store.list_assessments("r1", 0) == [HostAssessment("b", (), 0.5, 0.5, 0.5),
                                               HostAssessment("a", ("cpu",), None, 0.25, 0.75)]
    assert store.list_assessments("r1", 1) == [HostAssessment("c", (), 0.5, 0.25, 0.5)]


def test_a_version_2_database_is_migrated_to_attempts_and_proposed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as db:  # the two tables that changed, as version 2 made them
        db.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '2');
            CREATE TABLE recommendations (id TEXT PRIMARY KEY, created_at_s REAL NOT NULL, state TEXT NOT NULL,
                body TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE migrations (operation_id TEXT PRIMARY KEY, recommendation_id TEXT NOT NULL,
                move_index INTEGER NOT NULL DEFAULT 0, phase TEXT NOT NULL, created_at_s REAL NOT NULL,
                body TEXT NOT NULL, UNIQUE (recommendation_id, move_index));
            INSERT INTO migrations VALUES ('op1', 'r1', 0, 'failed', 1.0, '{}');
            INSERT INTO recommendations VALUES ('r1', 1.0, 'pending', '{}', 3);
        """)
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)  # yoyo
        assert db.execute("SELECT state FROM recommendations").fetchall() == [("proposed",)]
        assert db.execute("SELECT operation_id, attempt FROM migrations").fetchall() == [("op1", 1)]
        db.execute("INSERT INTO migrations VALUES ('op2', 'r1', 0, 2, 'queued', 2.0, '{}')")  # a retry fits


def test_pruning_forgets_the_vms_a_pruned_recommendation_moved(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    for i in range(3):
        store.add_recommendation(_recommendation(f"r{i}", 1000.0 + i))
    assert store.prune_recommendations(keep=1, older_than_s=0.0) == 2
    assert [r.id for r in store.open_recommendations({"v"})] == ["r2"]
    assert store.database.connection.execute("SELECT recommendation_id FROM recommendation_vms").fetchall() == [
        ("r2",)]


@pytest.mark.parametrize("name", ["with space", "per%20cent", "what?#not", "ünïcode"])
def test_a_data_directory_of_any_name_holds_its_database(tmp_path: Path, name: str) -> None:
    """yoyo opens SQLite by URI: the path is quoted so that the schema lands in this file and no other."""
    path = tmp_path / name / "advisor.sqlite3"
    SqliteStore(path).add_recommendation(_recommendation("r1", 1.0))
    assert SqliteStore(path).get_recommendation("r1") == _recommendation("r1", 1.0)
    assert {p.name for p in tmp_path.iterdir()} == {name}
    assert "advisor.sqlite3" in {p.name for p in (tmp_path / name).iterdir()}



def _fill(database: SqliteDatabase, pages: int) -> None:
    with database.transaction() as db:
        db.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    for _ in range(pages // 40):  # a commit every 40 pages of 4 KiB, as many small requests do
        with database.transaction() as db:
            db.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 4000,)] * 40)


def _frames_in_log(path: Path) -> int:
    """The pages the write-ahead log holds, as a passive checkpoint on another connection reports them."""
    with closing(sqlite3.connect(path)) as other:
        return int(other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_no_commit_checkpoints_the_write_ahead_log(tmp_path: Path) -> None:
    """A request's commit never pays for a checkpoint: past SQLite's automatic one at 1,000 pages, the log keeps
    every page written (with it, the log would have started again after 1,000)."""
    database = SqliteDatabase(tmp_path / "advisor.db", checkpoint_every_s=None)
    try:
        _fill(database, 2_000)
        assert _frames_in_log(tmp_path / "advisor.db") >= 2_000
    finally:
        database.close()


def test_the_write_ahead_log_is_checkpointed_by_a_thread_of_its_own(tmp_path: Path) -> None:
    """Once the thread has checkpointed everything written, the next commit starts the log again from its first
    page."""
    database = SqliteDatabase(tmp_path / "advisor.db", checkpoint_every_s=0.05)
    try:
        _fill(database, 2_000)
        done, deadline = database.checkpoints_done(), time.monotonic() + 120
        while database.checkpoints_done() < done + 2:  # one may have begun before the last commit
            assert time.monotonic() < deadline, "no checkpoint in 120 s"
            time.sleep(0.05)
        _fill(database, 40)
        assert _frames_in_log(tmp_path / "advisor.db") <= 100
    finally:
        database.close()
