"""Wording shared by every answer: counts with their noun in the right number ("1 host", "2 hosts", "0 VMs")."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1 (the nouns of this project take an s)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
