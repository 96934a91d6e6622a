"""Which hypervisor URIs the advisor may connect to: an allow-list of patterns that is the operator's, not the
client's.

A libvirt URI can make a client run a program (`qemu+ext:///system?command=...`), read a file (`test:///PATH`)
or probe ports for the caller; so a URI pushed with a host is accepted only if it matches one of the patterns of
the server's settings, and nothing ever connects to any other. A pattern is a URI whose host (netloc) and query
values may contain `*`:

    qemu+tls://*/system                                   TLS to any host's system daemon, no parameters
    qemu+unix:///system?socket=/tmp/lab/hosts/*/run/libvirt-sock    a lab's sockets

A URI matches when its scheme and path equal the pattern's, its host matches the pattern's host, and each of its
query parameters is one the pattern names, with a value matching the pattern's. A URI with a fragment, a query
value with a `..` path segment or a control character, or a parameter given twice never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, urlsplit

NETLOC_PATTERN = re.compile(r"[A-Za-z0-9.:_@\[\]*-]*")
MAX_URI = 1024


@dataclass(frozen=True)
class UriPattern:
    text: str
    scheme: str
    netloc: str
    path: str
    params: dict[str, str]

    @staticmethod
    def parse(text: str) -> UriPattern:
        parts = urlsplit(text)
        if not parts.scheme or parts.fragment or not NETLOC_PATTERN.fullmatch(parts.netloc):
            raise ValueError(f"not a hypervisor URI pattern: {text[:80]!r}")
        params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
        return UriPattern(text, parts.scheme.lower(), parts.netloc.lower(), parts.path, params)

    def matches(self, uri: str) -> bool:
        return _problem(self, uri) is None


def _problem(pattern: UriPattern, uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme.lower() != pattern.scheme:
        return "scheme"
    if parts.fragment or not NETLOC_PATTERN.fullmatch(parts.netloc) or "*" in parts.netloc:
        return "host"
    if not fnmatchcase(parts.netloc.lower(), pattern.netloc):
        return "host"
    if parts.path != pattern.path:
        return "path"
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        return "query"
    if len({k for k, _ in pairs}) != len(pairs):
        return "query"
    for key, value in pairs:
        allowed = pattern.params.get(key)
        if allowed is None or not fnmatchcase(value, allowed):
            return f"parameter {key!r}"
        if ".." in value.split("/") or any(ord(c) < 32 or ord(c) == 127 for c in value):
            return f"parameter {key!r}"
    return None


class UriPolicy:
    """The allow-list of a server."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = tuple(UriPattern.parse(p) for p in patterns)

    def allows(self, uri: str) -> bool:
        return len(uri) <= MAX_URI and any(p.matches(uri) for p in self.patterns)

    def explain(self, uri: str) -> str:
        """Why a URI is refused, in words fit for a client (the patterns are named, the URI is not echoed)."""
        if len(uri) > MAX_URI:
            return f"is longer than {MAX_URI} characters"
        allowed = ", ".join(p.text for p in self.patterns) or "none"
        return f"is not a hypervisor URI this advisor may connect to (allowed: {allowed})"
