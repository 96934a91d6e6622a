"""Opaque page tokens and page sizes, shared by every listing."""

from __future__ import annotations

import base64
import math

from advisor.domain.errors import InvalidArgument

MAX_PAGE_SIZE = 5_000
DEFAULT_PAGE_SIZE = 500


def encode_token(kind: str, value: str) -> str:
    """An opaque page token: which listing it continues, and the position in it."""
    return base64.urlsafe_b64encode(f"{kind}|{value}".encode()).decode()


def decode_token(kind: str, token: str, field: str) -> str:
    try:
        decoded = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    found, sep, value = decoded.partition("|")
    if found != kind or not sep:
        raise InvalidArgument(field, "is not a page token of this listing")
    return value


def decode_offset(kind: str, token: str) -> int:
    """The position a token of an offset-paged listing continues from (0 without a token)."""
    if not token:
        return 0
    raw = decode_token(kind, token, "page_token")
    # ASCII digits only, and few of them: str.isdigit() takes other scripts' digits, and int() refuses a number
    # of more than 4,300 digits (a forged token reached both)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise InvalidArgument("page_token", "is not a token this server issued")
    return int(raw)


def decode_cursor(kind: str, token: str) -> tuple[float, str] | None:
    """The (creation time, id) a token of a time-ordered listing continues after (None without a token)."""
    if not token:
        return None
    created, _, ident = decode_token(kind, token, "page_token").partition("|")
    try:
        at = float(created) if created.isascii() else math.nan
    except ValueError:
        at = math.nan
    if not math.isfinite(at):
        raise InvalidArgument("page_token", "is not a token this server issued")
    return at, ident


def page_size(size: int, field: str) -> int:
    if size < 0 or size > MAX_PAGE_SIZE:
        raise InvalidArgument(field, f"must be in [0, {MAX_PAGE_SIZE}] (got {size})")
    return size or DEFAULT_PAGE_SIZE
