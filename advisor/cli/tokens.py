"""`advisor tokens create | list | revoke`: bearer tokens, managed on the advisor's database itself (the SQLite
file of the data directory, or PostgreSQL's); no server needed, and a running server sees the change on its next
call."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from advisor.app import local_stores
from advisor.cli.common import as_json, store_args, store_location
from advisor.domain.access import Role
from advisor.tables import table


def _when(seconds: float | None) -> str:
    return "" if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_tokens(args: argparse.Namespace) -> int:
    data_dir, database_url = store_location(args)
    # Only create may make the database (the first token before the first start); list and revoke read what is
    # there, and a mistyped data directory is said rather than made.
    with local_stores(data_dir, existing=args.tokens_command != "create", database_url=database_url) as stores:
        tokens = stores.tokens
        if args.tokens_command == "create":
            print(tokens.create(args.name, Role.parse(args.role)))  # the token alone, for scripts
        elif args.tokens_command == "revoke":
            tokens.revoke(args.name)
            print(f"revoked {args.name}")
        else:
            listed = tokens.list()
            if args.json:
                rows: list[dict[str, Any]] = [{"name": t.name, "role": t.role.label, "created": _when(t.created_at_s),
                                               "revoked": _when(t.revoked_at_s) or None} for t in listed]
                print(as_json({"tokens": rows}))
            else:
                print(table(["name", "role", "created (UTC)", "revoked (UTC)"],
                            [[t.name, t.role.label, _when(t.created_at_s), _when(t.revoked_at_s)] for t in listed]))
    return 0


def add_tokens_commands(sub: Any) -> None:
    tokens = sub.add_parser("tokens", help="create, list and revoke bearer tokens (on the data directory)",
                            description="Tokens authenticate clients; each has a role: reader (list, get, "
                            "predict, watch), scheduler (+ push, recommend, plan), operator (+ approve, reject, "
                            "execute, abort), admin (everything). Only a hash of a token is stored.")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    roles = [r.label for r in Role]
    p = actions.add_parser("create", help="create a token and print it (and only it) on stdout")
    p.add_argument("--name", required=True, help="who the token is for; recorded as the actor of what it does")
    p.add_argument("--role", required=True, choices=roles)
    store_args(p)
    p = actions.add_parser("list", help="every token: name, role, created, revoked")
    store_args(p)
    p.add_argument("--json", action="store_true")
    p = actions.add_parser("revoke", help="revoke a token by name; it stops working on the next call")
    p.add_argument("name")
    store_args(p)
    tokens.set_defaults(func=cmd_tokens)
