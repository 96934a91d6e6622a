"""Plain-text tables for people at a terminal, and the escaping of text that came from elsewhere."""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\n`), so that what a client or a
    hypervisor wrote can neither forge lines nor move the terminal's cursor."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


# ANSI colours by name; `paint` uses them only on a terminal that wants colour.
_COLOURS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36", "dim": "2", "bold": "1"}


def colour_wanted(stream: object = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str, enabled: bool | None = None) -> str:
    """`text` in `colour` when colour is wanted (see colour_wanted), else unchanged."""
    if not colour or not (colour_wanted() if enabled is None else enabled):
        return text
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


ELLIPSIS = "\u2026"
NARROWEST = 12  # a column shrunk to fit the terminal keeps at least this many characters (or its header's)


def count(n: int, noun: str) -> str:
    """"1 host", "2 hosts", "0 VMs": advisor.domain.text.counted for the tables, which the lab's command line
    uses too and the lab may not import the domain."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def terminal_width(stream: object = None) -> int | None:
    """How wide output may be: $COLUMNS or the terminal's width; None into a pipe or a file, where nothing is cut
    (a script reads whole lines)."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if "COLUMNS" not in os.environ and not (isatty and isatty()):
        return None
    return shutil.get_terminal_size().columns


def wrap(text: str, first: str = "", rest: str | None = None, width: int | None = None) -> str:
    """A paragraph wrapped to `width` (default: the terminal's, see terminal_width; into a pipe, one line), its
    first line after `first`, the others after `rest` (default: as many spaces)."""
    width = terminal_width() if width is None else width
    rest = " " * len(first) if rest is None else rest
    if width is None or len(first) + len(text) <= width:
        return first + text
    return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False,
                         break_long_words=False)


def _shrink(cells: list[list[str]], widths: list[int], fit: int, limit: int) -> None:
    """Narrow column `fit` (free text) so that the row fits `limit` characters, ending cut cells with an ellipsis;
    the other columns (ids, numbers) are never cut."""
    over = sum(widths) + 2 * (len(widths) - 1) - limit
    if over <= 0:
        return
    narrow = max(widths[fit] - over, min(widths[fit], max(NARROWEST, len(cells[0][fit]))))
    for row in cells[1:]:
        if len(row[fit]) > narrow:
            row[fit] = row[fit][: narrow - 1].rstrip() + ELLIPSIS
    widths[fit] = narrow


def _left_out(cells: list[list[str]], widths: list[int], limit: int) -> list[int]:
    """Columns to leave out so that a table still too wide fits `limit`: first those with no value in any row
    (empty or "-"), then from the right; never the first (the id)."""
    def over(gone: list[int]) -> bool:
        kept = [w for i, w in enumerate(widths) if i not in gone]
        return sum(kept) + 2 * (len(kept) - 1) > limit
    gone: list[int] = []
    empty = [i for i in range(1, len(widths)) if len(cells) > 1 and all(row[i] in ("", "-") for row in cells[1:])]
    for i in [*empty, *reversed(range(1, len(widths)))]:
        if not over(gone):
            break
        if i not in gone:
            gone.append(i)
    return sorted(gone)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = (),
          colours: Mapping[int, Callable[[str], str]] | None = None, fit: int | Sequence[int] | None = None,
          width: int | None = None) -> str:
    """Columns padded to their widest cell; the columns whose indexes are in `right` are right-aligned. A column in
    `colours` is painted by the colour its function names for the cell's text (after padding, so that alignment
    holds; only on a terminal). The table fits `width` (default: the terminal's, see terminal_width; into a pipe,
    nothing is cut): column `fit`, a free-text one (or several, cut in the order given), is cut with an ellipsis;
    if it is still too wide, columns are left out (those without a value first, then from the right, never the
    first) and a last line names them."""
    cells = [[str(h) for h in headers], *[["" if c is None else safe(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    limit = terminal_width() if width is None else width
    gone: list[int] = []
    if limit is not None:
        for column in () if fit is None else (fit,) if isinstance(fit, int) else fit:
            _shrink(cells, widths, column, limit)
        gone = _left_out(cells, widths, limit)

    enabled = bool(colours) and colour_wanted()

    def line(row: list[str], body: bool = True) -> str:
        out = []
        for i, (c, w) in enumerate(zip(row, widths, strict=True)):
            if i in gone:
                continue
            padded = c.rjust(w) if i in right else c.ljust(w)
            if body and enabled and colours and i in colours:
                padded = paint(padded, colours[i](c.strip()), True)
            out.append(padded)
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for i, w in enumerate(widths) if i not in gone)
    lines = [line(cells[0], body=False), rule, *(line(r) for r in cells[1:])]
    if gone:
        names = ", ".join(cells[0][i] + (" (empty)" if all(r[i] in ("", "-") for r in cells[1:]) and rows else "")
                          for i in gone)
        lines.append(wrap(f"Left out to fit {limit} columns: {names}; a wider terminal shows them.", width=limit))
    return "\n".join(lines)
