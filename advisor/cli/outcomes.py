"""`advisor outcomes export`: the migrations this advisor executed, each with the prediction made for it, as a
table in the columns of the shared data (advisor.features.dataset) for the retraining job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from advisor.app import local_stores
from advisor.cli.common import amount, store_args, store_location
from advisor.features.dataset import OUTCOME_ROW_COLUMNS, outcome_row


def cmd_outcomes(args: argparse.Namespace) -> int:
    data_dir, database_url = store_location(args)
    # `existing`: a mistyped --data-dir is refused, never given a new empty database whose export would replace
    # --output with nothing
    with local_stores(data_dir, existing=True, database_url=database_url) as stores:
        records = stores.outcomes(args.since)
    rows = [row for r in records if (row := outcome_row(r)) is not None]
    # the header even without rows: the retraining job reads the columns
    frame = pd.DataFrame(rows, columns=list(OUTCOME_ROW_COLUMNS))
    if args.output is None or str(args.output) == "-":
        frame.to_csv(sys.stdout, index=False)
    else:
        frame.to_csv(args.output, index=False)
        print(f"wrote {len(frame)} migrations to {args.output} ({len(records) - len(rows)} without inputs skipped)",
              file=sys.stderr)
    return 0


def add_outcomes_commands(sub: Any) -> None:
    outcomes = sub.add_parser("outcomes", help="the migrations this advisor executed, as training data")
    actions = outcomes.add_subparsers(dest="outcomes_command", required=True, metavar="ACTION")
    p = actions.add_parser("export", help="write them as CSV in the shared data's columns, with the predictions")
    store_args(p)
    p.add_argument("--output", type=Path, help="CSV file (- or none: standard output)")
    p.add_argument("--since", type=amount, default=0.0, metavar="UNIX_TIME", help="only migrations ended since")
    outcomes.set_defaults(func=cmd_outcomes)
