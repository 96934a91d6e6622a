"""What every client command shares: how to reach the advisor (address, token, TLS, timeout) and how to print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from advisor.api.client import AdvisorClient, ClientTls
from advisor.config import ConfigError

DEFAULT_SERVER = "127.0.0.1:50051"


def client_args(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--server", default=None,
                   help=f"advisor address (default: $ADVISOR_SERVER or {DEFAULT_SERVER})")
    p.add_argument("--token", default=None, help="bearer token (default: $ADVISOR_TOKEN)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per call (default 30)")
    p.add_argument("--tls-ca", type=Path, default=None, help="CA certificate (PEM) of a TLS server")
    p.add_argument("--tls-cert", type=Path, default=None, help="client certificate (PEM), for mutual TLS")
    p.add_argument("--tls-key", type=Path, default=None, help="client key (PEM), for mutual TLS")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print the answer as JSON")


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{what}: cannot read {path} ({error.strerror or error})") from None


def connect(args: argparse.Namespace) -> AdvisorClient:
    """A client from the common flags (and $ADVISOR_SERVER, $ADVISOR_TOKEN)."""
    if args.timeout is not None and not 0 < args.timeout <= 86_400:
        raise ConfigError(f"--timeout must be in (0, 86400] seconds (got {args.timeout:g})")
    server = args.server or os.environ.get("ADVISOR_SERVER") or DEFAULT_SERVER
    token = args.token if args.token is not None else os.environ.get("ADVISOR_TOKEN", "")
    tls = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        ca = _read(args.tls_ca, "--tls-ca")
        if ca is None:
            raise ConfigError("--tls-ca is needed to talk TLS (the CA that signed the server's certificate)")
        if bool(args.tls_cert) != bool(args.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        tls = ClientTls(ca, _read(args.tls_cert, "--tls-cert"), _read(args.tls_key, "--tls-key"))
    return AdvisorClient(server, token=token.strip(), tls=tls, timeout_s=args.timeout)


def as_json(value: Message | Sequence[Message] | dict[str, Any]) -> str:
    if isinstance(value, Message):
        return json_format.MessageToJson(value)
    if isinstance(value, Sequence):
        return json.dumps([json_format.MessageToDict(m) for m in value], indent=2)
    return json.dumps(value, indent=2, default=str)


def emit(text: str) -> None:
    print(text, flush=True)


def fail(message: str) -> int:
    print(f"advisor: {message}", file=sys.stderr)
    return 1
