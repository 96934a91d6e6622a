"""Query parameters, hostile until checked. Each endpoint names the parameters it takes; an unknown or repeated
parameter, a malformed query or a value out of bounds is refused naming the parameter (HTTP 400), before any
lookup."""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import parse_qsl

from advisor.domain import validation
from advisor.domain.errors import InvalidArgument
from advisor.domain.recommendation import RecommendationState

MAX_QUERY = 4096
MAX_FIELDS = 16
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_MOVE_INDEX = 10_000
PAGE_TOKEN = re.compile(r"[A-Za-z0-9_=-]{1,1024}")  # what the use cases issue: URL-safe base64
FLAGS = {"true": True, "1": True, "false": False, "0": False}
STATE_PREFIX = "RECOMMENDATION_STATE_"


class Query:
    def __init__(self, raw: str, allowed: Collection[str]) -> None:
        if len(raw) > MAX_QUERY:
            raise InvalidArgument("query", f"must be at most {MAX_QUERY} characters (got {len(raw)})")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
        except UnicodeDecodeError:
            raise InvalidArgument("query", "must be UTF-8 text, percent-encoded") from None
        except ValueError:
            raise InvalidArgument("query", f"must have at most {MAX_FIELDS} parameters") from None
        self.values: dict[str, str] = {}
        for name, value in pairs:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "none"
                # The parameter as given (JSON escapes it), not quoted: scripts compare it with the name they sent.
                field = name if len(name) <= 40 else f"{name[:40]} ... ({len(name)} characters)"
                raise InvalidArgument(field, f"is not a parameter here (it takes: {takes})")
            if name in self.values:
                raise InvalidArgument(name, "is given more than once")
            self.values[name] = value

    def ident(self, name: str) -> str:
        """A required identifier, checked as the API checks ids."""
        value = self.values.get(name, "")
        validation.check_id(value, name)
        return value

    def integer(self, name: str, *, low: int, high: int, default: int) -> int:
        text = self.values.get(name)
        if text is None:
            return default
        if not text.isascii() or not text.isdigit() or len(text) > 6 or not low <= int(text) <= high:
            raise InvalidArgument(name, f"must be an integer in [{low}, {high}] (got {validation.shown(text)})")
        return int(text)

    def page_size(self, default: int = DEFAULT_PAGE_SIZE) -> int:
        return self.integer("page_size", low=1, high=MAX_PAGE_SIZE, default=default)

    def move_index(self) -> int:
        return self.integer("move_index", low=0, high=MAX_MOVE_INDEX, default=0)

    def page_token(self) -> str:
        text = self.values.get("page_token", "")
        if text and not PAGE_TOKEN.fullmatch(text):
            raise InvalidArgument("page_token", "is not a page token this server issued")
        return text

    def flag(self, name: str) -> bool:
        text = self.values.get(name, "false")
        if text not in FLAGS:
            raise InvalidArgument(name, f"must be true or false (got {validation.shown(text)})")
        return FLAGS[text]

    def state(self) -> RecommendationState | None:
        """A recommendation state by its name, `proposed` or `RECOMMENDATION_STATE_PROPOSED`; empty means all."""
        text = self.values.get("state", "")
        if not text:
            return None
        name = text.removeprefix(STATE_PREFIX).lower() if text.startswith(STATE_PREFIX) else text
        try:
            return RecommendationState(name)
        except ValueError:
            known = ", ".join(s.value for s in RecommendationState)
            raise InvalidArgument("state", f"must be one of {known} (got {validation.shown(text)})") from None
