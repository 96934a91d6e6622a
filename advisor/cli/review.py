"""The SRE's command line: `advisor recs list | show | approve | reject | execute | watch | abort | cancel | history`
and `advisor automation show | set`.

Tables for people (colour only on a terminal), `--json` for scripts (the API's own JSON). Exit codes: 0 done,
1 refused or failed (a watched migration that did not succeed included), 2 bad usage.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.common import (
    amount,
    as_json,
    as_json_line,
    client_args,
    connect,
    emit,
    execute_move,
    move_index,
    whole,
)
from advisor.cli.render import (
    decision_line,
    history_table,
    phase_name,
    progress_line,
    recommendations_table,
    render_operation,
    render_recommendation,
    state_name,
)
from advisor.domain.errors import ConfigError
from advisor.tables import safe, table

STATES = [pb.RecommendationState.Name(v).removeprefix("RECOMMENDATION_STATE_").lower()
          for v in pb.RecommendationState.values() if v]
RULED_OUT_SHOWN = 10  # hosts ruled out listed per move by `show` (all of them: ListHostAssessments)
RULED_OUT_MOVES = 20  # moves of a plan whose ruled-out hosts `show` fetches
ENDED = (pb.RECOMMENDATION_STATE_SUCCEEDED, pb.RECOMMENDATION_STATE_FAILED, pb.RECOMMENDATION_STATE_ABORTED,
         pb.RECOMMENDATION_STATE_EXPIRED, pb.RECOMMENDATION_STATE_CANCELLED, pb.RECOMMENDATION_STATE_REJECTED,
         pb.RECOMMENDATION_STATE_SUPERSEDED)


def add_recs_command(sub: Any) -> None:
    recs = sub.add_parser("recs", help="review, execute and follow recommendations (the SRE's commands)",
                          description=__doc__.split("\n\n")[0])
    actions = recs.add_subparsers(dest="recs_command", required=True, metavar="ACTION")
    p = actions.add_parser("list", help="newest first, with state, priority and gain")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--limit", type=whole(1), default=50)
    client_args(p)
    p = actions.add_parser("show", help="one recommendation: costs with intervals, technique and why, alternatives, "
                                        "hosts ruled out and why, history")
    p.add_argument("id")
    client_args(p)
    for action in ("approve", "reject"):
        p = actions.add_parser(action, help=f"{action} a proposed recommendation (recorded as your token's name)")
        p.add_argument("id")
        p.add_argument("--reason", required=action == "reject", help="why (required to reject)")
        client_args(p)
    p = actions.add_parser("execute", help="start a move of an approved recommendation, or all of them in order")
    p.add_argument("id")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--move", type=move_index, default=0, metavar="N",
                       help="which move, numbered from 1 as `recs show` lists them (default 1)")
    which.add_argument("--all", action="store_true", help="every move in order, each once the one before succeeded")
    p.add_argument("--retry", action="store_true", help="a new attempt of a failed or aborted move")
    p.add_argument("--watch", action="store_true", help="follow it to the end (exit 1 unless it succeeds)")
    client_args(p)
    p = actions.add_parser("watch", help="live progress (ETA or 'not converging') of a recommendation's moves or of "
                                         "one operation, to the end; exit 1 unless it succeeds")
    p.add_argument("id", help="a recommendation or an operation")
    client_args(p)
    p = actions.add_parser("abort", help="abort the running migration of a recommendation or an operation "
                                         "(never one in post-copy)")
    p.add_argument("id", help="a recommendation or an operation")
    p.add_argument("--reason", default="", help="why, for the record")
    client_args(p)
    p = actions.add_parser("cancel", help="cancel a recommendation, plan or drain: moves not started are dropped, a "
                                          "running pre-copy is aborted")
    p.add_argument("id")
    p.add_argument("--reason", required=True, help="why, for the record")
    client_args(p)
    p = actions.add_parser("history", help="executed moves, predicted against actual, with downtime quantiles")
    p.add_argument("--limit", type=whole(1), default=50)
    p.add_argument("--running", action="store_true", help="only migrations under way")
    client_args(p)
    recs.set_defaults(func=cmd_recs)


def add_automation_command(sub: Any) -> None:
    auto = sub.add_parser("automation", help="automation level and threshold per cluster")
    auto_actions = auto.add_subparsers(dest="automation_command", required=True, metavar="ACTION")
    p = auto_actions.add_parser("show", help="every cluster's level and threshold")
    client_args(p)
    p = auto_actions.add_parser("set", help="set a cluster's level and threshold (admin)")
    p.add_argument("cluster")
    p.add_argument("--level", required=True, choices=["manual", "partial", "full"])
    p.add_argument("--min-benefit-over-cost", type=amount, default=0.0,
                   help="moves of plans must gain at least this over their cost (default 0: any gain)")
    client_args(p)
    auto.set_defaults(func=cmd_automation)


def cmd_recs(args: argparse.Namespace) -> int:
    if getattr(args, "limit", 1) < 1:
        raise ConfigError(f"--limit must be at least 1 (got {args.limit})")
    with connect(args) as client:
        handler = _HANDLERS[args.recs_command]
        return handler(client, args)


def _list(client: AdvisorClient, args: argparse.Namespace) -> int:
    state = f"RECOMMENDATION_STATE_{(args.state or 'unspecified').upper()}"
    page = client.list_recommendations(pb.ListRecommendationsRequest(page_size=args.limit, state=state))
    if args.json:
        emit(as_json(page))
    elif not page.recommendations:  # one line saying so, not a header over nothing
        emit("no recommendations" + (f" in state {args.state}" if args.state else ""))
    else:
        emit(recommendations_table(page.recommendations))
    return 0


def _show(client: AdvisorClient, args: argparse.Namespace) -> int:
    rec = client.recommendation_whole(args.id)
    if args.json:
        emit(as_json(rec))
        return 0
    ruled_out = []
    for i in range(min(len(rec.moves), RULED_OUT_MOVES)):
        rejected = []
        for a in client.list_assessments(rec.id, i):
            if not a.eligible:
                rejected.append(a)
                if len(rejected) >= RULED_OUT_SHOWN:
                    break
        ruled_out.append(rejected)
    emit(render_recommendation(rec, ruled_out))
    return 0


def _decide(client: AdvisorClient, args: argparse.Namespace) -> int:
    rec = client.decide(args.id, args.recs_command == "approve", args.reason or "")
    emit(as_json(rec) if args.json else decision_line(rec))
    return 0


def _execute(client: AdvisorClient, args: argparse.Namespace) -> int:
    if args.all:
        if args.retry:
            raise ConfigError("--retry names one move: use it with --move")
        rec = client.run(args.id)
        if not args.watch:
            emit(as_json(rec) if args.json else render_recommendation(rec))
            return 0
        return _follow(client, rec.id, args.json)
    op = execute_move(client, args.id, args.move, retry=args.retry)
    if not args.watch:
        emit(as_json(op) if args.json else f"operation {op.operation_id}: {phase_name(op.phase)} "
                                           f"(attempt {op.attempt})")
        return 0
    return _follow_operation(client, op.operation_id, args.json)


def _recommendation(client: AdvisorClient, ident: str) -> pb.Recommendation | None:
    """The recommendation of that id, or None when the id is not one (then it may be an operation)."""
    try:
        return client.get_recommendation(ident)
    except ClientError as error:
        if error.code == "NOT_FOUND":
            return None
        raise


def _watch(client: AdvisorClient, args: argparse.Namespace) -> int:
    if _recommendation(client, args.id) is None:
        return _follow_operation(client, args.id, args.json)
    return _follow(client, args.id, args.json)


def _follow(client: AdvisorClient, rec_id: str, as_lines: bool) -> int:
    """Follow a recommendation's moves as they run, until it no longer executes; 0 when it succeeded."""
    while True:
        rec = client.get_recommendation(rec_id)
        running = [m.operation_id for m in rec.moves if m.state == pb.MOVE_STATE_RUNNING]
        if running:
            _follow_operation(client, running[0], as_lines, final=False)
            continue
        waiting = any(m.state == pb.MOVE_STATE_WAITING for m in rec.moves)
        if rec.state in ENDED or not (rec.run_requested_by and waiting) or rec.cancel_requested:
            break
        time.sleep(0.5)  # the next move of a run is about to start
    emit(as_json(rec) if as_lines else render_recommendation(rec))
    return 0 if rec.state == pb.RECOMMENDATION_STATE_SUCCEEDED else 1


def _follow_operation(client: AdvisorClient, operation_id: str, as_lines: bool, *, final: bool = True) -> int:
    for p in client.watch(operation_id):
        if as_lines:
            emit(as_json_line(p))  # one JSON object per line
        else:
            emit(progress_line(p, with_vm=True))
    op = client.operation(operation_id)
    if final:
        emit(as_json(op) if as_lines else render_operation(op))
    return 0 if op.phase == pb.MIGRATION_PHASE_SUCCEEDED else 1


def _abort(client: AdvisorClient, args: argparse.Namespace) -> int:
    rec = _recommendation(client, args.id)
    if rec is None:
        ops = [client.abort(args.id, args.reason)]
    else:
        running = [m.operation_id for m in rec.moves if m.state == pb.MOVE_STATE_RUNNING]
        if not running:
            emit(f"advisor: recommendation {safe(rec.id)} has no migration running ({state_name(rec.state)})")
            return 1
        ops = [client.abort(op, args.reason) for op in running]
    emit("\n".join(as_json_line(op) for op in ops) if args.json else "\n".join(
        f"abort requested for operation {safe(op.operation_id)} ({phase_name(op.phase)}); follow it with "
        f"`advisor recs watch {safe(op.operation_id)}`" for op in ops))
    return 0


def _cancel(client: AdvisorClient, args: argparse.Namespace) -> int:
    rec = client.cancel(args.id, args.reason)
    emit(as_json(rec) if args.json else render_recommendation(rec))
    return 0


def _history(client: AdvisorClient, args: argparse.Namespace) -> int:
    ops = client.list_migrations(running_only=args.running, limit=args.limit)
    if args.json:
        emit(as_json(pb.ListMigrationsResponse(operations=ops)))
    elif not ops:
        emit("no migration running" if args.running else "no migrations yet")
    else:
        emit(history_table(ops))
    return 0


_HANDLERS = {"list": _list, "show": _show, "approve": _decide, "reject": _decide, "execute": _execute,
             "watch": _watch, "abort": _abort, "cancel": _cancel, "history": _history}


def cmd_automation(args: argparse.Namespace) -> int:
    with connect(args) as client:
        if args.automation_command == "set":
            if not 0 <= args.min_benefit_over_cost < float("inf"):
                raise ConfigError(f"--min-benefit-over-cost must be a number >= 0 (got {args.min_benefit_over_cost})")
            setting = client.set_automation(pb.ClusterAutomation(
                cluster=args.cluster, level=args.level, min_benefit_over_cost=args.min_benefit_over_cost))
            emit(as_json(setting) if args.json else f"cluster {safe(setting.cluster)}: {setting.level}, "
                 f"threshold {setting.min_benefit_over_cost:g}x (set by {safe(setting.updated_by)})")
            return 0
        found = client.automation_settings()
    if args.json:
        emit(as_json(found))
        return 0
    rows = [[c.cluster, c.level, f"{c.min_benefit_over_cost:g}x",
             c.updated_by or "(settings)", c.update_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
             if c.HasField("update_time") else ""] for c in found.clusters]
    emit(table(["cluster", "level", "threshold", "set by", "when (UTC)"], rows))
    return 0
