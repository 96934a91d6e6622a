"""What every client command shares: how to reach the advisor (address, token, TLS, timeout) and how to print.

Imported to build the parser, so it imports gRPC and protobuf only when a command runs."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.domain.errors import ConfigError
from advisor.tables import count

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from advisor.api.client import AdvisorClient
    from advisor.api.v1 import advisor_pb2 as pb

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


def store_args(p: argparse.ArgumentParser, data_dir_help: str = "the advisor's data directory") -> None:
    """Where a command that opens the advisor's database itself finds it: `--database-url`, or else the SQLite file
    in `--data-dir`."""
    p.add_argument("--data-dir", type=Path, help=f"{data_dir_help} (its SQLite database unless --database-url)")
    p.add_argument("--database-url", default=None, metavar="URL",
                   help="the advisor's PostgreSQL database, postgresql://USER@HOST:PORT/DATABASE (default: "
                        "$ADVISOR_DATABASE_URL; unset: SQLite in --data-dir)")


def store_location(args: argparse.Namespace) -> tuple[Path, str]:
    """The data directory and database URL of `store_args`; one of the two is needed."""
    url = args.database_url if args.database_url is not None else os.environ.get("ADVISOR_DATABASE_URL", "")
    if args.data_dir is None and not url:
        raise ConfigError("give --data-dir (the SQLite database in it) or --database-url (or $ADVISOR_DATABASE_URL)")
    return (args.data_dir or Path(".")), url


# The largest count the API's counts and indexes hold (uint32): a larger one fails in protobuf, not at the advisor.
MAX_COUNT = (1 << 32) - 1


def whole(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to MAX_COUNT, refused with the usage otherwise."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number (got {text!r})") from None
        if not low <= number <= MAX_COUNT:
            raise argparse.ArgumentTypeError(f"must be from {low} to {MAX_COUNT} (got {number})")
        return number

    return parse


def move_index(text: str) -> int:
    """A move as people number it, from 1 (`--move 2`), as the API's index, from 0."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a move's number, from 1 (got {text!r})") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"moves are numbered from 1 (got {number})")
    if number - 1 > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"moves are numbered from 1 to {MAX_COUNT + 1} (got {number})")
    return number - 1


def amount(text: str) -> float:
    """An argparse type: a finite number, at least 0 (the advisor's own ranges are its to say)."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number (got {text!r})") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, at least 0 (got {text!r})")
    return number


def execute_move(client: AdvisorClient, rec_id: str, index: int, *, retry: bool = False) -> pb.Operation:
    """Start the move of index `index` (shown as `index + 1`); a move beyond the plan is said in the numbers people
    use, where the API names its 0-based `move_index`."""
    from advisor.api.client import ClientError

    try:
        return client.execute(rec_id, index, retry=retry)
    except ClientError as error:
        if error.code != "INVALID_ARGUMENT" or not error.details.startswith("move_index"):
            raise
        moves = len(client.get_recommendation(rec_id).moves)
        raise ConfigError(f"--move {index + 1}: recommendation {rec_id} has {count(moves, 'move')}, numbered from "
                          "1") from None


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{what}: cannot read {path} ({error.strerror or error})") from None


def connect(args: argparse.Namespace) -> AdvisorClient:
    """A client from the common flags (and $ADVISOR_SERVER, $ADVISOR_TOKEN)."""
    from advisor.api.client import AdvisorClient, ClientTls

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


def as_json(value: Message | dict[str, Any]) -> str:
    """The API's message in protobuf's JSON mapping (what `--json` prints), or a dict of them."""
    from google.protobuf import json_format
    from google.protobuf.message import Message

    if isinstance(value, Message):
        return json_format.MessageToJson(value)
    return json.dumps({k: json_format.MessageToDict(v) if isinstance(v, Message) else v for k, v in value.items()},
                      indent=2, default=str)


def as_json_line(message: Message) -> str:
    """One message as one line of JSON (a stream of them: `watch --json`)."""
    from google.protobuf import json_format

    return json.dumps(json_format.MessageToDict(message))


def emit(text: str) -> None:
    print(text, flush=True)


def fail(message: str) -> int:
    print(f"advisor: {message}", file=sys.stderr)
    return 1
