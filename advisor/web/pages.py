"""What the web listener sends besides JSON: the page, the login page and their static files (read once, at
start, from advisor/web/static/), and the few short HTML refusals. None of them names a path of the server's
machine (the data directory is written DIR)."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
LOGIN = "login.html"
DOCUMENTS = (INDEX, LOGIN)  # served at / and /login, never cached, not under /static/
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
    """The pages and the scripts and styles beside them, by file name; only these are ever served."""
    found = {}
    for path in sorted(directory.iterdir()):
        kind = CONTENT_TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            body = path.read_bytes()
            found[path.name] = StaticFile(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    for name in DOCUMENTS:
        if name not in found:
            raise FileNotFoundError(f"{directory / name}: the web page is missing from the package")
    return found


def _document(title: str, *paragraphs: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n').encode()


LOGIN_COMMAND = "advisor ui --data-dir DIR"  # DIR: the advisor's data directory, which no page names


def foreign_refused() -> bytes:
    return _document("Refused", "This request came from a page of another site or port; the advisor answers only "
                     "its own page. Open the page itself.")


def unknown_host() -> bytes:
    return _document("Unknown host name", "This listener answers only to its own names and addresses (a request "
                     "naming another may come from a page whose name was made to point here).")


def page_refused() -> bytes:
    return _document("Not served here",
                     "The web page is served over TLS (settings <code>tls_cert</code> and <code>tls_key</code>) or on "
                     "loopback: this listener (setting <code>metrics_listen</code>) is beyond loopback, on plain "
                     "HTTP. Listen on 127.0.0.1, set a certificate, or set <code>web_allow_plaintext_remote = "
                     "true</code> to serve it anyway.")
