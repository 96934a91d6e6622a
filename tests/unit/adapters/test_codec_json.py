"""The stores' JSON bodies are written by orjson (`to_json`) as the same documents as json's encoder wrote of
`encode`: bodies written before and after read back alike."""

from __future__ import annotations

import json
from dataclasses import replace

from advisor.adapters.sql.codec import decode_inputs, decode_recommendation, encode, to_json
from advisor.domain.model import Disk, MigrationInputs, Objective, PlanGoal, Vm
from advisor.domain.recommendation import Decision
from tests.unit.usecases.world import hosts, world


def test_a_plan_and_the_inventory_are_written_as_encode_writes_them() -> None:
    w = world()
    vms = [Vm("v1", "a", 4096, 2, labels={"team": "x"}, anti_affinity_groups=frozenset({"g2", "g1"}),
              disks=(Disk("vda", 10_240, 2_048, False), Disk("vdb", 1_024, 1_024, True))),
           Vm("v2", "a", 8192, 2), Vm("v3", "b", 4096, 2)]
    w.push(hosts("a", "b", "c"), vms)
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
    decided = w.review.decide(plan.id, Decision.APPROVE, "alice", "ok")
    w.migrations.execute(decided.id, "alice")
    migrations = w.store.list_migrations(running=False, limit=10)
    for value in (plan, decided, *migrations, *w.inventory.hosts().values(), *vms):
        assert json.loads(to_json(value)) == json.loads(json.dumps(encode(value)))
    assert plan.moves and migrations and decode_recommendation(json.loads(to_json(decided))) == decided


def test_stored_inputs_keep_the_resident_memory_and_those_stored_before_it_read_without() -> None:
    inputs = MigrationInputs(4096.0, 20.0, 100.0, 100.0, 300.0, resident_memory_mib=1536.0)
    assert decode_inputs(json.loads(to_json(inputs))) == inputs
    older = json.loads(to_json(inputs))
    del older["resident_memory_mib"]  # a migration stored before the field was
    assert decode_inputs(older) == replace(inputs, resident_memory_mib=None)
