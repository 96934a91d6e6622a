"""A dry run is not stored: the API answers it with no id and no state (neither the recommendation's nor its
moves'), where it once said PROPOSED of something nobody could approve; a stored answer keeps both."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from google.protobuf import json_format

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli import EXAMPLE, push_example

MakeApp = Callable[..., App]
Connect = Callable[..., AdvisorClient]


def test_a_dry_run_has_no_id_and_no_state(make_app: MakeApp, client_for: Connect) -> None:
    client = client_for(make_app())
    push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    target = client.recommend(pb.RecommendTargetRequest(vm_id="db-1", dry_run=True))
    drain: pb.Recommendation = client.call(  # type: ignore[assignment]
        client.recommendations.PlanCluster,
        pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN, host_id="hv-a", dry_run=True))
    for answer in (target, drain):
        assert answer.moves, answer.goal
        assert (answer.id, answer.state) == ("", pb.RECOMMENDATION_STATE_UNSPECIFIED), answer.goal
        assert all(m.state == pb.MOVE_STATE_UNSPECIFIED for m in answer.moves), answer.goal
        shown = json_format.MessageToDict(answer)  # what `--json` prints: no state at all
        assert "state" not in shown and all("state" not in m for m in shown["moves"]), answer.goal
    stored = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    assert stored.id and stored.state == pb.RECOMMENDATION_STATE_PROPOSED
    assert stored.moves[0].state == pb.MOVE_STATE_WAITING
