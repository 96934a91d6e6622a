"""The one model registry: versions written whole, activated only when asked, refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.ml.registry import (
    Artifact,
    ArtifactError,
    ModelRegistry,
    active_fingerprint,
    load_or_fallback,
    next_version,
    promotion_on_request,
    read_active,
)


def card(version: str, **extra: Any) -> dict[str, Any]:
    return {"model": "toy", "version": version, "files": {"weights": "weights.txt"}, "created_by": "a test",
            "data": {"rows": 3}, "libraries": {}, "metrics": {"mape": 0.1}, "promotion": promotion_on_request(False),
            **extra}


def write(registry: ModelRegistry, version: str, *, activate: bool = False, body: str = "1 2 3") -> Path:
    return registry.write(card(version), lambda d: (d / "weights.txt").write_text(body), activate=activate)


def load(artifact: Artifact) -> str:
    return artifact.path("weights").read_text()


def test_written_versions_are_not_active_until_asked(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1")
    write(reg, "1.0.0")
    with pytest.raises(ArtifactError, match="no active toy model"):
        reg.load(load)
    write(reg, "1.1.0", activate=True, body="new")
    assert reg.active_version() == "1.1.0" and reg.load(load) == "new"
    assert reg.load(load, "1.0.0") == "1 2 3"
    assert reg.versions() == ["1.0.0", "1.1.0"]
    stored = json.loads((tmp_path / "1.1.0" / "card.json").read_text())
    assert (stored["card_schema"], stored["kind"], stored["schema_hash"]) == (1, "toy", "hash-1")
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_earlier_schema_the_code_still_builds_is_read_and_new_versions_get_the_current_one(tmp_path: Path) -> None:
    write(ModelRegistry(tmp_path, "toy", "hash-1"), "1.0.0", activate=True)
    reg = ModelRegistry(tmp_path, "toy", "hash-2", also_reads=("hash-1",))
    assert reg.load(load) == "1 2 3"
    write(reg, "1.1.0")
    assert json.loads((tmp_path / "1.1.0" / "card.json").read_text())["schema_hash"] == "hash-2"
    with pytest.raises(ArtifactError, match="feature schema mismatch"):
        ModelRegistry(tmp_path, "toy", "hash-3").load(load)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda d: (d / "card.json").write_text("{"), "is not valid JSON"),
    (lambda d: (d / "card.json").write_text("[]"), "is not a JSON object"),
    (lambda d: (d / "weights.txt").unlink(), "the weights file 'weights.txt' is missing"),
    (lambda d: _edit(d, kind="cost"), "is a 'cost' model, not 'toy'"),
    (lambda d: _edit(d, schema_hash="other"), "feature schema mismatch: artifact 1.0.0"),
    (lambda d: _edit(d, card_schema=7), "card schema 7"),
    (lambda d: _edit(d, files={"weights": "../escape"}), "is missing"),
    (lambda d: _edit(d, metrics=None, drop="metrics"), "lacks metrics"),
    (lambda d: (d.parent / "ACTIVE").write_text("../../etc\n"), "names no valid version"),
])
def test_unusable_artifacts_are_refused_saying_why(tmp_path: Path, damage: Any, reason: str) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1", retrain_hint="make toy")
    directory = write(reg, "1.0.0", activate=True)
    damage(directory)
    with pytest.raises(ArtifactError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        reg.load(load)
    assert load_or_fallback(reg, load, lambda why: f"fallback: {why}").startswith("fallback: ")


def _edit(directory: Path, drop: str = "", **changes: Any) -> None:
    path = directory / "card.json"
    data = {**json.loads(path.read_text()), **changes}
    data.pop(drop, None)
    path.write_text(json.dumps(data))


def test_a_loader_that_fails_makes_a_corrupt_artifact(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1")
    write(reg, "1.0.0", activate=True)

    def broken(artifact: Artifact) -> str:
        raise RuntimeError("unknown model format")

    with pytest.raises(ArtifactError, match=r"corrupt artifact .*RuntimeError: unknown model format"):
        reg.load(broken)


def test_a_card_without_what_is_required_is_never_written(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1")
    incomplete = card("2.0.0")
    del incomplete["promotion"]
    with pytest.raises(ValueError, match="card lacks promotion"):
        reg.write(incomplete, lambda d: (d / "weights.txt").write_text("x"), activate=True)
    assert reg.versions() == [] and not (tmp_path / "ACTIVE").exists()


def test_a_version_once_written_is_never_rewritten(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1")
    write(reg, "2.0.0", activate=True, body="served")
    before = {p.name: p.read_bytes() for p in (tmp_path / "2.0.0").iterdir()}
    with pytest.raises(ArtifactError, match=r"toy version 2.0.0 exists .*immutable.*the next free one is 2.1.0"):
        write(reg, "2.0.0", activate=True, body="refused candidate")
    assert {p.name: p.read_bytes() for p in (tmp_path / "2.0.0").iterdir()} == before
    assert reg.load(load) == "served" and read_active(tmp_path) == "2.0.0"
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ArtifactError, match="exists"):
        reg.new_version("2.0.0")
    assert reg.new_version() == "2.1.0" and reg.new_version("3.0.0") == "3.0.0"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1")

    def crash(directory: Path) -> None:
        (directory / "weights.txt").write_text("half")
        raise RuntimeError("fitting failed")

    with pytest.raises(RuntimeError, match="fitting failed"):
        reg.write(card("1.0.0"), crash, activate=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("versions", "expected"), [
    ([], "1.0.0"),
    (["t1", "candidate"], "1.0.0"),
    (["1.1.0", "2.0.0"], "2.1.0"),
    (["1.9.0", "1.10.0", "1.2.5"], "1.11.0"),
    (["2.0.0", "2.0.1", "t1"], "2.1.0"),
])
def test_the_next_free_version_raises_the_minor_of_the_highest_release(versions: list[str], expected: str) -> None:
    assert next_version(versions) == expected


def test_activation_replaces_the_pointer_whole(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, "toy", "hash-1")
    write(reg, "1.0.0", activate=True)
    write(reg, "1.1.0")
    reg.activate("1.1.0")
    assert (tmp_path / "ACTIVE").read_text() == "1.1.0\n" and read_active(tmp_path) == "1.1.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.0.0", "1.1.0", "ACTIVE"]  # no temporary file left
    with pytest.raises(ArtifactError, match="cannot read"):
        reg.activate("9.9.9")  # a version that is not there is never pointed at
    assert read_active(tmp_path) == "1.1.0"


def test_the_fingerprint_changes_with_the_pointer_and_with_the_artifact_it_names(tmp_path: Path) -> None:
    assert active_fingerprint(tmp_path) == ()  # no active version
    reg = ModelRegistry(tmp_path, "toy", "hash-1")
    write(reg, "1.0.0", activate=True)
    first = active_fingerprint(tmp_path)
    assert first[0] == "1.0.0" and active_fingerprint(tmp_path) == first  # nothing changed, nothing noticed
    write(reg, "1.1.0")
    assert active_fingerprint(tmp_path) == first  # a new version, not active: the served artifact is the same
    (tmp_path / "1.0.0" / "weights.txt").write_text("replaced in place, behind the registry's back")
    replaced = active_fingerprint(tmp_path)
    assert replaced != first and replaced[0] == "1.0.0"
    reg.activate("1.1.0")
    assert active_fingerprint(tmp_path)[0] == "1.1.0"
