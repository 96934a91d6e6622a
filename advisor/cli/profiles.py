"""`advisor profiles calibrate|list|show`: host profiles as data, fitted from a host's executed migrations and
stored as immutable versions through the model registry (models/profiles/NAME/VERSION)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor.config import Settings
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.features.inputs import PROFILES
from advisor.ml.profile_input import read_calibration
from advisor.ml.profile_store import ProfileStore, check_name
from advisor.ml.profiles import PARAMETERS, TARGETS, HostProfile, calibrate, like_profile, unfitted
from advisor.ml.registry import ArtifactError, check_asked_version
from advisor.physics import TECHNIQUES
from advisor.tables import count, safe, table


def _store(args: argparse.Namespace) -> ProfileStore:
    return ProfileStore(Path(args.models_dir or Settings().models_dir) / "profiles")


def _as_dict(profile: HostProfile) -> dict[str, Any]:
    return {"name": profile.name, "version": profile.version, "migrations": profile.migrations,
            "created": profile.created, "like": profile.base or None, "parameters": dict(profile.parameters),
            "shrunk_toward": dict(profile.prior),
            "intervals": {t: {k: [round(x, 4) for x in v] for k, v in o.items()}
                          for t, o in profile.offsets.items()}}


def render(profile: HostProfile, kept: Sequence[str] = ()) -> str:
    """What a profile learned: its parameters (those in `kept` the prior's, nothing calibrated on having said
    anything of them), and per technique the p10-p90 band of actual over predicted."""
    like = f", like {profile.base}" if profile.base else ""
    lines = [f"profile {profile.name} version {profile.version}: {count(profile.migrations, 'migration')}{like} "
             f"({profile.created})", "", "parameter            value  shrunk toward"]
    lines += [f"{name:<20} {profile.parameters[name]:<6g} {profile.prior[name]:g}"
              + ("  (kept: no migration says anything of it)" if name in kept else "") for name in PARAMETERS]
    lines += ["", "served / physics: p10 median p90    " + "  ".join(f"{t:<16}" for t in TARGETS)]
    for technique in TECHNIQUES:
        bands = [profile.interval(technique, t) for t in TARGETS]
        lines.append(f"{technique!s:<35}  " + "  ".join(
            " ".join(f"{_ratio(x):.2f}" for x in band).ljust(16) for band in bands))
    return "\n".join(safe(line) for line in lines)


def _ratio(log_offset: float) -> float:
    return math.exp(log_offset)


def _version(text: str) -> str:
    try:
        return check_asked_version(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_calibrate(args: argparse.Namespace) -> int:
    try:
        name = check_name(args.name)
    except ValueError as error:
        raise InvalidArgument("--name", str(error)) from None
    if name in PROFILES:
        raise InvalidArgument("--name", f"{name} is served by the learned model, which retraining calibrates; "
                                        "choose another name")
    store = _store(args)
    if args.version is not None:  # refused before anything is read or fitted, as a bad flag is
        try:
            store.check_new(name, args.version)
        except ArtifactError as error:
            args.usage_error(f"argument --version: {error}")
    like = None
    if args.like == name:  # shrunk toward itself, a refit of a few migrations would replace the fit of many
        raise InvalidArgument("--like", f"{name} is the profile calibrated: name another one these hosts resemble, "
                                        "or calibrate from all of its migrations without --like")
    if args.like is not None:
        like = _get(store, args.like, "--like")
        if like is None:
            raise NotFound("--like", "host profile", args.like, _unknown(args.like)
                           or "only a calibrated one: see advisor profiles list")
    if args.input is None:  # hosts like a known profile, none of their migrations yet: its parameters for now
        if like is None:
            raise InvalidArgument("--input", "is required unless --like names a known profile to start from")
        profile, migrations, kept = like_profile(name, like), 0, PARAMETERS
    else:
        table, observed = read_calibration(args.input, name)
        profile, migrations = calibrate(name, table, observed, like=like), len(table)
        kept = unfitted(table, observed, profile.parameters)
    command = f"advisor profiles calibrate --name {name}" + (f" --input {args.input}" if args.input else "")
    command += f" --like {like.name}" if like else ""
    try:
        saved = store.save(profile, command, {"file": str(args.input) if args.input else None,
                                              "migrations": migrations,
                                              "like": f"{like.name}/{like.version}" if like else None,
                                              "kept_from_prior": list(kept)},
                           version=args.version)
    except ArtifactError as error:
        raise FailedPrecondition(str(error)) from None
    print(json.dumps({**_as_dict(saved), "kept_from_prior": list(kept)}, indent=2) if args.json
          else render(saved, kept))
    print(f"stored profile {name} version {saved.version} in {store.root / name}", file=sys.stderr)
    return 0


def _unknown(name: str) -> str:
    """Why a name the learned model serves is no stored profile."""
    if name not in PROFILES:
        return ""
    return (f"{' and '.join(PROFILES)} are served by the learned cost model, which retraining calibrates: they are "
            "not stored profiles")


def _get(store: ProfileStore, name: str, field: str) -> HostProfile | None:
    """The active version of a profile, None if never calibrated; one that cannot be read is refused saying why."""
    try:
        return store.get(name)
    except ArtifactError as error:
        raise FailedPrecondition(f"{field}: host profile {name} exists but its active version is unreadable: "
                                 f"{error}") from None


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    profiles: list[HostProfile] = []
    unreadable: dict[str, str] = {}
    for name in store.names():
        try:
            if (profile := store.get(name)) is not None:
                profiles.append(profile)
        except ArtifactError as error:  # listed, not left out: it is there, and serving says so
            unreadable[name] = str(error)
    if args.json:
        print(json.dumps([_as_dict(p) for p in profiles]
                         + [{"name": n, "unreadable": why} for n, why in unreadable.items()], indent=2))
        return 0
    if not profiles and not unreadable:
        print("no host profiles calibrated: advisor profiles calibrate --name NAME --input FILE.csv")
        return 0
    if profiles:  # the parameters that say most about a host; all of them are in `show` and --json
        print(table(["name", "version", "migrations", "like", "throughput", "sent memory", "dirty scale", "created"],
                    [(p.name, p.version, p.migrations, p.base or "-", f"{p.parameters['throughput']:g}",
                      f"{p.parameters['sent_memory_factor']:g}", f"{p.parameters['dirty_scale']:g}", p.created)
                     for p in profiles], right=(2, 4, 5, 6)))
    for name, why in unreadable.items():
        print(safe(f"{name}: its active version is unreadable, served as uncalibrated: {why}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    profile = _get(_store(args), args.name, "name")
    if profile is None:
        raise NotFound("name", "host profile", args.name, _unknown(args.name))
    print(json.dumps(_as_dict(profile), indent=2) if args.json else render(profile))
    return 0


def add_profiles_commands(sub: Any) -> None:
    profiles = sub.add_parser("profiles", help="host profiles: calibrate the physics from a host's migrations")
    actions = profiles.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")
    p = actions.add_parser("calibrate", help="fit a profile from executed migrations and store it as a new version")
    p.add_argument("--name", required=True, help="the profile's name (the hosts' advisor.profile label)")
    p.add_argument("--input", type=Path, help="CSV: the `advisor predict cost` input columns plus "
                   "total_time_ms, downtime_ms, transferred_kib and outcome (completed or aborted), every row a "
                   "migration of --name (a host_profile or source column empty or --name); without it, --like's "
                   "parameters until the hosts' own migrations come in")
    p.add_argument("--like", metavar="PROFILE", help="another calibrated profile these hosts resemble: the fit starts "
                   "from its parameters and is shrunk toward them, not toward the physics' defaults, while it has few "
                   "migrations")
    p.add_argument("--version", type=_version, help="the version to write, MAJOR.MINOR.PATCH (default: the next "
                   "free one); an existing one is refused")
    p.set_defaults(func=cmd_calibrate, usage_error=p.error)
    p = actions.add_parser("list", help="every calibrated profile: version, migrations, parameters, when")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("show", help="one profile: what it learned")
    p.add_argument("name")
    p.set_defaults(func=cmd_show)
    for action in actions.choices.values():
        action.add_argument("--models-dir", type=Path, help="models directory (default: the repository's models/)")
        action.add_argument("--json", action="store_true", help="JSON instead of a table")
