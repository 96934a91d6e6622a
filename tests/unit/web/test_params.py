"""Query parameters are hostile until checked: unknown, repeated, malformed or out of bounds is refused naming
the parameter."""

from __future__ import annotations

import pytest

from advisor.domain.errors import InvalidArgument
from advisor.domain.recommendation import RecommendationState
from advisor.web.params import MAX_PAGE_SIZE, Query

TAKES = {"id", "page_size", "page_token", "state", "running_only", "move_index"}


def _refused(raw: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        q = Query(raw, TAKES)
        q.ident("id")
        q.page_size()
        q.page_token()
        q.state()
        q.flag("running_only")
        q.move_index()
    return refused.value


def test_good_values_are_read() -> None:
    q = Query("id=rec-1%2Fa&page_size=20&state=RECOMMENDATION_STATE_PROPOSED&running_only=true&move_index=3"
              "&page_token=cmVjb21t-_==", TAKES)
    assert q.ident("id") == "rec-1/a"
    assert q.page_size() == 20 and q.move_index() == 3 and q.flag("running_only") is True
    assert q.state() is RecommendationState.PROPOSED and q.page_token() == "cmVjb21t-_=="
    assert Query("state=expired", TAKES).state() is RecommendationState.EXPIRED
    defaults = Query("", TAKES)
    assert defaults.page_size() == 50 and defaults.state() is None and defaults.flag("running_only") is False


@pytest.mark.parametrize(("raw", "parameter"), [
    ("id=", "id"), ("id=a%00b", "id"), ("id=" + "x" * 129, "id"), ("id=a b", "id"), ("id=%ff", "query"),
    ("id=a&page_size=abc", "page_size"), ("id=a&page_size=0", "page_size"),
    (f"id=a&page_size={MAX_PAGE_SIZE + 1}", "page_size"), ("id=a&page_size=-1", "page_size"),
    ("id=a&page_size=1e3", "page_size"), ("id=a&page_size=%EF%BC%91", "page_size"),  # a full-width digit
    ("id=a&page_token=a%3Cb", "page_token"), ("id=a&state=pending", "state"), ("id=a&state=PROPOSED", "state"),
    ("id=a&state=RECOMMENDATION_STATE_UNSPECIFIED", "state"), ("id=a&running_only=yes", "running_only"),
    ("id=a&move_index=10001", "move_index"), ("id=a&id=b", "id"), ("id=a&debug=1", "debug"),
    ("&".join(f"id{i}=1" for i in range(20)), "query"), ("q=" + "x" * 5000, "query"),
])
def test_bad_values_name_the_parameter(raw: str, parameter: str) -> None:
    assert _refused(raw).field == parameter


def test_an_unknown_parameter_is_named_short() -> None:
    error = _refused("x" * 300 + "=1")
    assert len(error.field) < 80 and "300 characters" in error.field
