"""Page tokens: what this server issued reads back; anything else is INVALID_ARGUMENT naming page_token, never an
internal error."""

from __future__ import annotations

import base64

import pytest

from advisor.domain.errors import InvalidArgument
from advisor.usecases.paging import decode_cursor, decode_offset, encode_token


def forged(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_issued_tokens_read_back() -> None:
    assert decode_offset("moves:r1", encode_token("moves:r1", "500")) == 500
    assert decode_offset("moves:r1", "") == 0
    assert decode_cursor("recs:", encode_token("recs:", "1800000000.5|r9")) == (1800000000.5, "r9")


@pytest.mark.parametrize("token", [
    forged("moves:r1|\u00b2"),  # a superscript two: str.isdigit() says yes, int() says no
    forged("moves:r1|\u0663"),  # an Arabic-Indic three: int() reads it, this server never writes it
    forged("moves:r1|" + "9" * 5000),  # past int()'s 4,300 digits
    forged("moves:r1|-1"),
    forged("other:r1|5"),
    "%%%",
])
def test_a_forged_offset_token_is_refused_as_such(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_offset("moves:r1", token)


@pytest.mark.parametrize("created", ["nan", "inf", "1e999", "\u0661\u0662", "x"])
def test_a_forged_cursor_token_is_refused_as_such(created: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_cursor("recs:", forged(f"recs:|{created}|r9"))
