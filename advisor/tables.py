"""Plain-text tables for people at a terminal, and the escaping of text that came from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\n`), so that what a client or a
    hypervisor wrote can neither forge lines nor move the terminal's cursor."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the columns whose indexes are in `right` are right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else safe(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            (c.rjust(w) if i in right else c.ljust(w)) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
