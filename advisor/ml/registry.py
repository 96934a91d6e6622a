"""One registry for every learned model: versioned directories, one card schema, an ACTIVE pointer, the schema
check, and a fallback that says why.

    models/<kind>/ACTIVE              the version in use, one line
    models/<kind>/<version>/card.json the card (schema below), beside the model files it names
    models/<kind>/<version>/...       the model files, e.g. LightGBM text models

Training writes a version through `ModelRegistry.write` (into a temporary directory renamed into place, so a
reader never sees half a version) and does not activate it unless asked; serving loads the active version
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
    promotion     {"promoted": bool, "reason": str}: whether and why it was activated (or not)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

CARD_SCHEMA = 1
CARD_FILE = "card.json"
ACTIVE_FILE = "ACTIVE"
REQUIRED_KEYS = ("card_schema", "kind", "model", "version", "schema_hash", "files", "created_by", "data",
                 "libraries", "metrics", "promotion")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")

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


class ModelRegistry:
    """The versions of one kind of model under `root` (e.g. models/cost), checked against `schema_hash`."""

    def __init__(self, root: Path, kind: str, schema_hash: str, *, retrain_hint: str = "") -> None:
        self.root = Path(root)
        self.kind = kind
        self.schema_hash = schema_hash
        self._hint = retrain_hint

    # -- reading -------------------------------------------------------------------------------------------

    def active_version(self) -> str:
        path = self.root / ACTIVE_FILE
        try:
            version = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ArtifactError(f"no active {self.kind} model: cannot read {path} ({e.strerror or e})") from e
        try:
            return check_version(version)
        except ArtifactError:
            raise ArtifactError(f"{path} names no valid version: {version[:40]!r}") from None

    def versions(self) -> list[str]:
        """Every version directory with a card, oldest name first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and VERSION_PATTERN.match(p.name) and (p / CARD_FILE).is_file())

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
        if card["schema_hash"] != self.schema_hash:
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
        """Write a version: `write_files(tmp_dir)` writes the model files the card names (and may add to the
        card, a mutable mapping), then the card is added,
        the directory is renamed into place (replacing an older copy of that version), then checked by reading
        it back. `activate` points ACTIVE at it."""
        version = check_version(str(card["version"]))
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{version}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        write_files(tmp)  # may complete the card (e.g. with what fitting found)
        full = {"card_schema": CARD_SCHEMA, "kind": self.kind, "schema_hash": self.schema_hash, **card}
        missing = [k for k in REQUIRED_KEYS if k not in full]
        if missing:
            shutil.rmtree(tmp)
            raise ValueError(f"card lacks {', '.join(missing)}")
        (tmp / CARD_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        final = self.root / version
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        self.artifact(version)  # what was written must read back
        if activate:
            self.activate(version)
        return final

    def activate(self, version: str) -> None:
        """Point ACTIVE at a checked version, atomically (a reader sees the old or the new pointer)."""
        self.artifact(version)
        tmp = self.root / f".{ACTIVE_FILE}.tmp"
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, self.root / ACTIVE_FILE)


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
