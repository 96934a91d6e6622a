"""Every relative link of the README and docs/ leads somewhere: the file exists and, for a `#fragment` into
Markdown, a heading of that file has that anchor (as GitHub makes them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    body = FENCE.sub("", page.read_text())
    return {anchor(m) for m in re.findall(r"^#{1,6} (.+)$", body, re.M)}


def relative_links(page: Path) -> list[str]:
    body = FENCE.sub("", page.read_text())
    return [target for target in LINK.findall(body) if not re.match(r"[a-z]+:", target)]


def test_the_anchor_rule_matches_githubs() -> None:
    assert anchor("Silent guests after a migration: QEMU 7.2's TCG dirty tracking (cause, evidence, fix)") == (
        "silent-guests-after-a-migration-qemu-72s-tcg-dirty-tracking-cause-evidence-fix")
    assert anchor("From `advisor serve` to the page") == "from-advisor-serve-to-the-page"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nowhere)\n")
    assert broken(page) == ["missing.md", "#nowhere"]


def broken(page: Path) -> list[str]:
    found = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or (fragment and dest.suffix == ".md" and fragment not in anchors(dest)):
            found.append(target)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == []
