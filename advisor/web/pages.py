"""What the web listener sends besides JSON: the page and its static files (read once, at start, from
advisor/web/static/), and the few short HTML answers for those without a session."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# Everything sent: the page allows only its own scripts, styles and requests; no inline script, no framing.
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static(directory: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """The page and the scripts and styles beside it, by file name; only these are ever served."""
    found = {}
    for path in sorted(directory.iterdir()):
        kind = CONTENT_TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            body = path.read_bytes()
            found[path.name] = StaticFile(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    if INDEX not in found:
        raise FileNotFoundError(f"{directory / INDEX}: the web page is missing from the package")
    return found


def _document(title: str, *paragraphs: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n').encode()


def _command(data_dir: Path) -> str:
    return f"<code>advisor ui --data-dir {html.escape(str(data_dir))}</code>"


def login_required(data_dir: Path, why: str) -> bytes:
    return _document("Login required", html.escape(why[:1].upper() + why[1:200]) + ".",
                     f"For a login link, run {_command(data_dir)} on the advisor's machine and open the link it "
                     "prints (it works once, within 10 minutes).")


def logged_out(data_dir: Path) -> bytes:
    return _document("Logged out", f"Run {_command(data_dir)} for a new login link.")


def page_refused() -> bytes:
    return _document("Not served here",
                     "The web page is served on loopback only: this listener (setting <code>metrics_listen</code>) "
                     "is beyond loopback, on plain HTTP. Listen on 127.0.0.1, or set "
                     "<code>allow_plaintext_remote = true</code> to serve it anyway.")
