"""Host profiles stored through the model registry: `models/profiles/<name>/<version>/card.json` with an ACTIVE
pointer per profile. Versions are immutable (the registry refuses an existing one); a calibration or an online
update writes the next one and activates it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from advisor.domain.migration import MigrationResult
from advisor.domain.model import MigrationInputs, Technique
from advisor.features.inputs import PROFILES, InputTable
from advisor.ml.profiles import (
    PARAMETERS,
    PRIOR,
    TARGETS,
    UNCALIBRATED_OFFSETS,
    HostProfile,
    Observed,
    uncalibrated,
    updated,
)
from advisor.ml.registry import (
    ACTIVE_FILE,
    RELEASE_PATTERN,
    ArtifactError,
    ModelRegistry,
    active_fingerprint,
    check_asked_version,
)

KIND = "host_profile"
MODEL_NAME = "calibrated-physics"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PARAMETERS_FILE = "parameters.json"


def schema_hash(parameters: tuple[str, ...] = PARAMETERS) -> str:
    """What a stored profile means: its parameter names and targets (a change of either refuses old profiles,
    but for those of EARLIER_PARAMETERS)."""
    document = json.dumps({"parameters": list(parameters), "targets": list(TARGETS)}, sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()


# The parameters of profiles stored before the last ones existed, newest first: such a profile is read with the
# missing ones at their priors, which leave its physics as it was calibrated (`stop_mib_s` at 0: the stop at the
# usable bandwidth, as before it existed), but for compression on links faster than the prior's 200 MiB/s of pages
# (132 MiB/s on the wire) where `compress_mib_s` is missing; `contention` at 0: no load slows it.
EARLIER_PARAMETERS: tuple[tuple[str, ...], ...] = (PARAMETERS[:8], PARAMETERS[:7], PARAMETERS[:5])


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"profile name {name[:40]!r} must be 1-64 lower-case letters, digits, '.', '_' or '-'")
    return name


def _release(version: str) -> tuple[int, ...] | None:
    match = RELEASE_PATTERN.match(version)
    return tuple(int(n) for n in match.groups()) if match else None


class ProfileStore:
    """The calibrated host profiles under `root` (e.g. models/profiles)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # Served profiles by name, with the fingerprint of the version they were read from: a prediction on a
        # calibrated host then costs a stat of its files, not a read and check of its card and parameters. An
        # unreadable version is kept as why, so that it is not read again for every prediction either.
        self._served: dict[str, tuple[tuple[object, ...], HostProfile | ArtifactError]] = {}

    def _registry(self, name: str) -> ModelRegistry:
        return ModelRegistry(self.root / check_name(name), KIND, schema_hash(),
                             retrain_hint="advisor profiles calibrate")

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and NAME_PATTERN.match(p.name))

    def get(self, name: str) -> HostProfile | None:
        """The active version of a profile, None when it was never calibrated; raises ArtifactError saying why when
        it was but its active version cannot be read (a corrupt file is not a profile never calibrated)."""
        if not NAME_PATTERN.match(name):
            return None
        fingerprint = active_fingerprint(self.root / name)
        served = self._served.get(name)
        if fingerprint and served is not None and served[0] == fingerprint:
            read = served[1]
        elif fingerprint or (self.root / name / ACTIVE_FILE).exists():  # ACTIVE naming no version is unreadable
            read = self._read(name)
            if fingerprint:
                self._served[name] = (fingerprint, read)
        else:  # never calibrated (nothing kept for it: names come from hosts' labels)
            return None
        if isinstance(read, ArtifactError):
            raise read
        return read

    def _read(self, name: str) -> HostProfile | ArtifactError:
        """The active version, read with the current parameters or, stored before the last were added, earlier
        ones; else why not (the current schema's reason: an earlier one's 'schema mismatch' says nothing)."""
        errors = []
        for parameters in (PARAMETERS, *EARLIER_PARAMETERS):
            try:
                return ModelRegistry(self.root / name, KIND, schema_hash(parameters)).load(_load)
            except ArtifactError as e:
                errors.append(e)
        return errors[0]

    def check_new(self, name: str, version: str) -> str:
        """`version` if it is well formed (check_asked_version: ValueError) and no version of profile `name` is the same
        number, however written (ArtifactError: versions are immutable)."""
        registry = self._registry(name)
        taken = [v for v in registry.versions() if _release(v) == _release(check_asked_version(version))]
        if taken:
            written = f" (as {taken[0]})" if taken[0] != version else ""
            raise ArtifactError(f"{KIND} version {version} exists in {registry.root}{written}: versions are "
                                f"immutable, write another (the next free one is {registry.next_version()})")
        return registry.check_new(version)

    def save(self, profile: HostProfile, created_by: str, data: dict[str, Any], version: str | None = None
             ) -> HostProfile:
        """Write the profile as a new version (the next free one unless `version`, see check_new) and activate
        it."""
        registry = self._registry(profile.name)
        version = registry.next_version() if version is None else self.check_new(profile.name, version)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        body = {"name": profile.name, "parameters": dict(profile.parameters), "migrations": profile.migrations,
                "offsets": {t: {k: list(v) for k, v in o.items()} for t, o in profile.offsets.items()},
                "residuals": {t: {k: list(v) for k, v in o.items()} for t, o in profile.residuals.items()},
                "created": created, "base": profile.base, "prior": dict(profile.prior)}

        def write_files(directory: Path) -> None:
            (directory / PARAMETERS_FILE).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n",
                                                     encoding="utf-8")

        card = {"model": MODEL_NAME, "version": version, "files": {"parameters": PARAMETERS_FILE},
                "created_by": created_by, "data": data, "libraries": {}, "created": created,
                "metrics": {"migrations": profile.migrations, "parameters": dict(profile.parameters),
                            "like": profile.base},
                "promotion": {"promoted": True, "reason": "a calibration is served from its first version"}}
        registry.write(card, write_files, activate=True)
        return replace(profile, version=version, created=created)

    def prune(self, name: str, keep: int) -> None:
        """Remove all but the newest `keep` versions of a profile (never the active one)."""
        registry = self._registry(name)
        active = registry.active_version()
        ordered = sorted(registry.versions(), key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
        for version in ordered[:-keep] if keep > 0 else ordered:
            if version != active:
                shutil.rmtree(registry.root / version, ignore_errors=True)


def _load(artifact: Any) -> HostProfile:
    body = json.loads(artifact.path("parameters").read_text(encoding="utf-8"))
    parameters = {p: float(body["parameters"].get(p, PRIOR[p])) for p in PARAMETERS}
    offsets = {str(t): {k: (float(v[0]), float(v[1]), float(v[2])) for k, v in o.items() if k in UNCALIBRATED_OFFSETS}
               for t, o in dict(body["offsets"]).items()}
    residuals = {str(t): {k: tuple(float(x) for x in v) for k, v in o.items()}
                 for t, o in dict(body.get("residuals", {})).items()}
    # profiles stored before `base` existed were all shrunk toward the physics' defaults
    prior = {p: float((body.get("prior") or PRIOR).get(p, PRIOR[p])) for p in PARAMETERS}
    return HostProfile(str(body["name"]), parameters, int(body["migrations"]), offsets, artifact.version,
                       str(body.get("created", "")), residuals, str(body.get("base") or ""), prior)


class OnlineProfiles:
    """Every completed migration on a host profile the learned model does not know updates it: a new version,
    without a retrain. A profile never calibrated is learnt from its first executed migration on (starting from
    the uncalibrated physics, shrunk toward it while it has few migrations), so a new kind of host needs neither an
    operator nor a code change. Only migrations the advisor executed reach here, and at most MAX_PROFILES names
    are kept, so labels pushed by clients cannot grow the store without bound. The last KEEP_VERSIONS versions of
    each are kept."""

    KEEP_VERSIONS = 20
    MAX_PROFILES = 64

    def __init__(self, store: ProfileStore) -> None:
        self.store = store
        self._lock = threading.Lock()  # migrations end in their own threads: one read-and-write at a time

    def learn(self, inputs: MigrationInputs, technique: Technique, outcome: MigrationResult) -> None:
        name = inputs.host_profile
        if not name or name in PROFILES or not NAME_PATTERN.match(name):
            return
        if not inputs.dirty_rate_known:  # an assumed dirty rate would fit the host to inputs it never saw
            return
        if outcome.total_time_ms is None or outcome.transferred_mib is None:  # not measured: nothing to fit
            return
        downtime = np.nan if outcome.downtime_ms is None else outcome.downtime_ms
        observed = Observed(np.array([outcome.total_time_ms]), np.array([downtime]),
                            np.array([outcome.transferred_mib]), np.array([True]))
        with self._lock:
            try:
                current = self.store.get(name)
            except ArtifactError:  # unreadable: a fit of this one migration must not silently replace it
                return
            if current is None and name not in self.store.names() and len(self.store.names()) >= self.MAX_PROFILES:
                return
            start = current or uncalibrated(name)
            self.store.save(updated(start, InputTable.from_rows([(inputs, technique)]), observed),
                            "online update from an executed migration" if current else
                            "learnt from the first executed migration on hosts labelled with this profile",
                            {"previous_version": start.version, "migrations": start.migrations + 1})
            self.store.prune(name, self.KEEP_VERSIONS)
