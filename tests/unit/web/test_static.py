"""The page's files: the pinned library is the one the README names, and nothing needs an inline script or style
(the Content-Security-Policy allows only the page's own files)."""

from __future__ import annotations

import hashlib
import re

from advisor.web.pages import STATIC_DIR, load_static


def test_the_pinned_library_is_the_one_the_readme_names() -> None:
    readme = (STATIC_DIR / "README.md").read_text()
    pinned = dict(re.findall(r"^\| `(uPlot\.[^`]+)` \|[^|]+\| `([0-9a-f]{64})` \|$", readme, re.M))
    assert set(pinned) == {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"}
    for name, digest in pinned.items():
        assert hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "(v1.6.32)" in (STATIC_DIR / "uPlot.iife.min.js").read_text()[:100]


def test_no_inline_script_or_style_and_only_the_page_files_are_served() -> None:
    for name in ("index.html", "login.html"):
        page = (STATIC_DIR / name).read_text()
        assert all(src for src in re.findall(r"<script([^>]*)>", page)) and "src=" in page
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)
        assert not re.search(r"\son[a-z]+=", page) and " style=" not in page and "<style" not in page
    for script in ("session.js", "common.js", "cluster.js", "app.js", "plots.js", "login.js"):
        text = (STATIC_DIR / script).read_text()
        assert "innerHTML" not in text and "eval(" not in text and "new Function" not in text
        assert "document.cookie" not in text and "localStorage" not in text  # the secret stays in this tab
    assert set(load_static()) == {"index.html", "login.html", "session.js", "login.js", "common.js", "cluster.js",
                                  "app.js", "plots.js", "style.css", "uPlot.iife.min.js", "uPlot.min.css"}


def test_counts_are_worded_exactly_never_as_noun_s() -> None:
    """'1 host', '3 hosts' through common.js's counted(), never '3 host(s)'."""
    for name in ("index.html", "login.html", "session.js", "common.js", "cluster.js", "app.js", "plots.js",
                 "login.js"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"\w\(s\)", text), name
