"""Wording shared by every answer: counts with their noun in the right number ("1 host", "2 hosts", "0 VMs"), a
sample's time as notes show it."""

from __future__ import annotations

import datetime as dt
import functools


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1 (the nouns of this project take an s)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


@functools.lru_cache(maxsize=1024)
def fmt_time(time_s: float) -> str:
    """A sample's time as the notes show it; kept for the few times recent samples share (a question shows two or
    three, and formatting one costs more than the rest of its inputs' text)."""
    return dt.datetime.fromtimestamp(time_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
