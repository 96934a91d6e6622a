"""An interceptor's handler is rebuilt once per method, and again only when the handler it wraps changes."""

from __future__ import annotations

from typing import Any

from advisor.api.handlers import Rebuilt


def test_a_handler_is_rebuilt_once_per_method_and_again_when_it_changes() -> None:
    made: list[tuple[object, str]] = []

    def rebuild(handler: Any, method: str) -> tuple[object, str]:
        made.append((handler, method))
        return (handler, method)

    cache, first, second = Rebuilt(rebuild), object(), object()
    answers = [cache(first, "/S/A"), cache(first, "/S/A"), cache(first, "/S/B"), cache(second, "/S/A")]
    assert answers == [(first, "/S/A"), (first, "/S/A"), (first, "/S/B"), (second, "/S/A")]
    assert answers[0] is answers[1]
    assert made == [(first, "/S/A"), (first, "/S/B"), (second, "/S/A")]
