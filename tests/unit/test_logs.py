"""Structured logs: one JSON object a line, whose own fields a caller's `extra` never replaces."""

from __future__ import annotations

import json
import logging

from advisor.logs import JsonFormatter


def test_a_record_is_one_json_object_with_its_extras_and_its_own_fields_kept() -> None:
    record = logging.LogRecord("advisor.automation", logging.INFO, __file__, 1, "automation set", None, None)
    record.__dict__.update({"cluster": "east", "level": "full", "msg_id": 3})
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["msg"]) == ("info", "advisor.automation", "automation set")
    assert (entry["cluster"], entry["extra_level"], entry["msg_id"]) == ("east", "full", 3)
