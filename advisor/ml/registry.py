"""One registry for every learned model: versioned directories, one card schema, an ACTIVE pointer, the schema
check, and a fallback that says why.

    models/<kind>/ACTIVE              the version in use, one line
    models/<kind>/<version>/card.json the card (schema below), beside the model files it names
    models/<kind>/<version>/...       the model files, e.g. LightGBM text models

Versions are immutable: training writes a new one through `ModelRegistry.write` (into a temporary directory
renamed into place, so a reader never sees half a version), which refuses a version that exists, and does not
activate it unless asked (`next_version` names the next free one); ACTIVE is switched atomically and read only by
`read_active`; `active_fingerprint` tells a server that the artifact it serves changed. Serving loads the active version
through `ModelRegistry.load`, which refuses a card of another kind, another feature schema (its hash differs from
the code's) or naming missing files, and raises `ArtifactError` saying why: the caller falls back to a simpler
model and carries the reason in every prediction (`ModelRef.fallback_reason`).

Card schema (JSON object, card_schema 1); the required keys are checked, a model may add its own:

    card_schema   1
    kind          "cost", "dirty_rate", ...: which registry it belongs to
    model         the model's name, e.g. "lightgbm-cost"
    version       the version directory's name
    schema_hash   sha256 of the model's feature schema document (advisor.features)
    files         {role: file name} of the model files, relative to the version directory
    created_by    the command that produced it
    data          what it was trained on (file, sha256, rows ...)
    libraries     library versions at training time
    metrics       the evaluation, as the training job reports it
    promotion     {"promoted": bool, "reason": str}: whether and why it was activated (or not); a model with a
                  promotion gate adds "refused" (bool: refused versions are never activated) and "gate" (every
                  comparison with the active model, training/gate.py)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

CARD_SCHEMA = 1
CARD_FILE = "card.json"
ACTIVE_FILE = "ACTIVE"
REQUIRED_KEYS = ("card_schema", "kind", "model", "version", "schema_hash", "files", "created_by", "data",
                 "libraries", "metrics", "promotion")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
RELEASE_PATTERN = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
# A version asked for by name (a training job's or a calibration's --version): MAJOR.MINOR.PATCH without leading
# zeros, so that one number names one version and `next_version` follows it (a stored name may be any
# VERSION_PATTERN, as older artifacts are).
ASKED_VERSION_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")

T = TypeVar("T")


class ArtifactError(Exception):
    """An artifact cannot be used; the message says why (it becomes the fallback reason)."""


@dataclass(frozen=True)
class Artifact:
    """A checked version: its directory and card. `path(role)` is the file the card names for a role."""

    directory: Path
    card: Mapping[str, Any]

    @property
    def version(self) -> str:
        return str(self.card["version"])

    def path(self, role: str) -> Path:
        return self.directory / str(self.card["files"][role])


def check_version(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise ArtifactError(f"not a valid version name: {version[:40]!r}")
    return version


def check_asked_version(version: str) -> str:
    """A version asked for by name (ASKED_VERSION_PATTERN); ValueError saying the form otherwise."""
    if not ASKED_VERSION_PATTERN.match(version):
        raise ValueError(f"version {version[:40]!r} must be MAJOR.MINOR.PATCH, numbers without leading zeros "
                         "(e.g. 1.2.0)")
    return version


def read_active(root: Path, kind: str = "") -> str:
    """The version `root/ACTIVE` points at (the one place it is read); raises ArtifactError saying why none."""
    path = Path(root) / ACTIVE_FILE
    try:
        version = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ArtifactError(f"no active {kind or Path(root).name} model: cannot read {path} ({e.strerror or e})"
                            ) from e
    try:
        return check_version(version)
    except ArtifactError:
        raise ArtifactError(f"{path} names no valid version: {version[:40]!r}") from None


def active_fingerprint(root: Path) -> tuple[object, ...]:
    """What identifies the artifact served from `root`: the active version and its files' identity, size and
    modification time, so that a version rewritten in place, or a file of it replaced, is noticed as a change
    even though ACTIVE still names the same version. Empty when there is no active version."""
    try:
        version = read_active(root)
        directory = Path(root) / version
        files = sorted((p.name, p.stat()) for p in directory.iterdir() if p.is_file())
        return (version, directory.stat().st_ino,
                *((name, st.st_ino, st.st_size, st.st_mtime_ns) for name, st in files))
    except (ArtifactError, OSError):
        return ()


def next_version(versions: list[str]) -> str:
    """The next free release after the highest `major.minor.patch` among `versions`: its minor raised ("2.0.0"
    -> "2.1.0"); "1.0.0" when there is none."""
    releases = [tuple(int(n) for n in m.groups()) for v in versions if (m := RELEASE_PATTERN.match(v))]
    if not releases:
        return "1.0.0"
    major, minor, _ = max(releases)
    return f"{major}.{minor + 1}.0"


class ModelRegistry:
    """The versions of one kind of model under `root` (e.g. models/cost), checked against `schema_hash` (what new
    versions are written with) or one of `also_reads` (earlier schemas the code still builds)."""

    def __init__(self, root: Path, kind: str, schema_hash: str, *, retrain_hint: str = "",
                 also_reads: Iterable[str] = ()) -> None:
        self.root = Path(root)
        self.kind = kind
        self.schema_hash = schema_hash
        self._readable = {schema_hash, *also_reads}
        self._hint = retrain_hint

    # -- reading -------------------------------------------------------------------------------------------

    def active_version(self) -> str:
        return read_active(self.root, self.kind)

    def versions(self) -> list[str]:
        """Every version directory with a card, oldest name first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and VERSION_PATTERN.match(p.name) and (p / CARD_FILE).is_file())

    def next_version(self) -> str:
        return next_version(self.versions())

    def new_version(self, requested: str | None = None) -> str:
        """The version a training job is to write: `requested` if no version has that name (else ArtifactError),
        by default the next free one."""
        return self.check_new(requested) if requested is not None else self.next_version()

    def check_new(self, version: str) -> str:
        """`version` if no version of that name exists; raises ArtifactError otherwise (versions are immutable)."""
        if (self.root / check_version(version)).exists():
            raise ArtifactError(f"{self.kind} version {version} exists in {self.root}: versions are immutable,"
                                f" write another (the next free one is {self.next_version()})")
        return version

    def artifact(self, version: str | None = None) -> Artifact:
        """The checked artifact of `version` (default: the active one); raises ArtifactError saying why not."""
        version = check_version(version) if version is not None else self.active_version()
        directory = self.root / version
        path = directory / CARD_FILE
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ArtifactError(f"cannot read {path} ({e.strerror or e})") from e
        except ValueError as e:
            raise ArtifactError(f"{path} is not valid JSON ({e})") from e
        if not isinstance(card, dict):
            raise ArtifactError(f"{path} is not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in card]
        if missing:
            raise ArtifactError(f"{path} lacks {', '.join(missing)} (card schema {CARD_SCHEMA})")
        if card["card_schema"] != CARD_SCHEMA:
            raise ArtifactError(f"{path} has card schema {card['card_schema']!r}, this advisor reads {CARD_SCHEMA}")
        if card["kind"] != self.kind:
            raise ArtifactError(f"{path} is a {card['kind']!r} model, not {self.kind!r}")
        if card["schema_hash"] not in self._readable:
            hint = f"; retrain with {self._hint}" if self._hint else ""
            raise ArtifactError(
                f"feature schema mismatch: artifact {version} was trained on schema {str(card['schema_hash'])[:12]}, "
                f"the code's schema is {self.schema_hash[:12]}{hint}"
            )
        files = card["files"]
        if not isinstance(files, dict) or not files:
            raise ArtifactError(f"{path}: 'files' must name the model files")
        for role, name in files.items():
            if not isinstance(name, str) or "/" in name or name.startswith(".") or not (directory / name).is_file():
                raise ArtifactError(f"{path}: the {role} file {str(name)[:60]!r} is missing")
        return Artifact(directory, card)

    def load(self, loader: Callable[[Artifact], T], version: str | None = None) -> T:
        """Load a version with `loader`. Whatever stops a loader (a malformed card, a model file the library
        cannot read) makes the artifact unusable: it is reported as an ArtifactError saying why."""
        artifact = self.artifact(version)
        try:
            return loader(artifact)
        except ArtifactError:
            raise
        except Exception as e:  # any failure of a loader means: do not serve this artifact
            raise ArtifactError(f"corrupt artifact {artifact.directory}: {type(e).__name__}: {e}") from e

    # -- writing -------------------------------------------------------------------------------------------

    def write(self, card: dict[str, Any], write_files: Callable[[Path], None], *, activate: bool) -> Path:
        """Write a new version: `write_files(tmp_dir)` writes the model files the card names (and may add to the
        card, a mutable mapping), then the card is added, the directory is renamed into place and checked by
        reading it back. A version that exists is refused (ArtifactError), before anything is written and again
        at the rename. `activate` points ACTIVE at it."""
        version = self.check_new(str(card["version"]))
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".tmp", dir=self.root))
        try:
            write_files(tmp)  # may complete the card (e.g. with what fitting found)
            full = {"card_schema": CARD_SCHEMA, "kind": self.kind, "schema_hash": self.schema_hash, **card}
            missing = [k for k in REQUIRED_KEYS if k not in full]
            if missing:
                raise ValueError(f"card lacks {', '.join(missing)}")
            (tmp / CARD_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            final = self.root / self.check_new(version)
            try:
                tmp.rename(final)  # fails if another writer's version got there first (a non-empty directory)
            except OSError as e:
                raise ArtifactError(f"{self.kind} version {version} could not be written to {final}: {e}") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.artifact(version)  # what was written must read back
        if activate:
            self.activate(version)
        return final

    def activate(self, version: str) -> None:
        """Point ACTIVE at a checked version, atomically: a reader sees the old or the new pointer, never half."""
        self.artifact(version)
        fd, tmp = tempfile.mkstemp(prefix=f".{ACTIVE_FILE}.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(version + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.root / ACTIVE_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def promotion_on_request(activate: bool) -> dict[str, Any]:
    """The card's `promotion` for a training job that activates only when asked (no evaluation gate)."""
    return {"promoted": activate,
            "reason": "activated on request (--activate)" if activate else "written, not activated (no --activate)"}


def load_or_fallback(registry: ModelRegistry, loader: Callable[[Artifact], T], fallback: Callable[[str], T]) -> T:
    """The active model, or `fallback(reason)` when it cannot be used."""
    try:
        return registry.load(loader)
    except ArtifactError as e:
        return fallback(str(e))
