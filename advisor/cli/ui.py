"""`advisor ui --data-dir DIR`: a one-time login link to the web page of the advisor serving DIR.

Like `advisor tokens`, it writes to the data directory's database itself (the server runs meanwhile). The
session the link opens reads only, and acts for a token (`--name`, default `web`): when no active token has that
name, a reader token is made for it whose secret is never shown, so it stands only for the page's sessions;
`advisor tokens revoke NAME` ends them all. The link works once, within 10 minutes; a session lasts 12 hours.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from advisor.app import local_stores, published
from advisor.cli.common import store_args, store_location
from advisor.domain.access import Role
from advisor.domain.errors import ConfigError
from advisor.web import login

DEFAULT_NAME = "web"


def served_base_url(data_dir: Path) -> str:
    """The web page's URL from what the advisor serving `data_dir` published; ConfigError when none serves it."""
    found = published(data_dir)
    pid = found.get("pid")
    if not found or not isinstance(pid, int) or not _alive(pid):
        raise ConfigError(f"no advisor is serving {data_dir} (start `advisor serve --data-dir {data_dir}`, or give "
                          "--base-url)")
    address = found.get("metrics")
    if not isinstance(address, str) or not address:
        raise ConfigError(f"the advisor serving {data_dir} (pid {pid}) has no web listener: its metrics_listen is "
                          "empty")
    if found.get("web_page") is False:
        raise ConfigError(f"the advisor serving {data_dir} (pid {pid}) does not serve the web page: its listener "
                          f"{address} is beyond loopback on plain HTTP (listen on 127.0.0.1, set tls_cert and "
                          "tls_key, or set web_allow_plaintext_remote = true)")
    scheme = found.get("web_scheme")
    return login.base_url(address, scheme if scheme in ("http", "https") else "http")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # advisor.json left by an advisor that was killed
    except PermissionError:
        return True
    return True


def cmd_ui(args: argparse.Namespace) -> int:
    data_dir, database_url = store_location(args)
    if args.data_dir is None and not args.base_url:
        raise ConfigError("give --data-dir (where the running advisor published its address) or --base-url")
    base = args.base_url.rstrip("/") if args.base_url else served_base_url(data_dir)
    if not base.startswith(("http://", "https://")) or "?" in base or "#" in base:
        raise ConfigError(f"--base-url must be an http:// or https:// URL without query (got {base[:80]!r})")
    with local_stores(data_dir, existing=True, database_url=database_url) as stores:
        sessions = stores.sessions
        token_hash = sessions.active_token_hash(args.name)
        made = token_hash is None
        if token_hash is None:
            stores.tokens.create(args.name, Role.READER)  # its secret is dropped: never shown
            token_hash = sessions.active_token_hash(args.name)
        if token_hash is None:
            raise ConfigError(f"the token {args.name!r} was revoked meanwhile; run this again")
        now = time.time()
        code, stored = login.new_code(token_hash, now)
        sessions.add_code(stored)
        sessions.purge(now)
    print(login.login_url(base, code))  # the link alone on stdout, for scripts
    note = f"a reader token named {args.name!r} was made for the page's sessions; " if made else ""
    print(f"advisor: open this link within {login.CODE_TTL_S / 60:.0f} minutes; it works once and opens a "
          f"{login.SESSION_TTL_S / 3600:.0f} h reader session as {args.name!r} ({note}`advisor tokens revoke "
          f"{args.name}` ends its sessions)", file=sys.stderr)
    return 0


def add_ui_commands(sub: Any) -> None:
    p = sub.add_parser("ui", help="print a one-time login link to the web page (on the data directory)",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    store_args(p, "the data directory of the running advisor")
    p.add_argument("--name", default=DEFAULT_NAME,
                   help=f"the token the session acts for (default {DEFAULT_NAME}; made as a reader if missing)")
    p.add_argument("--base-url", help="the page's URL as your browser reaches it (default: the address the advisor "
                                      "published in DATA_DIR/advisor.json)")
    p.set_defaults(func=cmd_ui)
