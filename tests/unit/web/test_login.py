"""The web page's login rules, pure: what opens a session, what keeps it, what a login posts."""

from __future__ import annotations

import pytest

from advisor.domain.sessions import LoginCode, WebSession
from advisor.web import login

NOW = 1_000_000.0


def _code(**changes: object) -> LoginCode:
    values: dict[str, object] = {"digest": "d", "token_hash": "t", "created_at_s": NOW, "expires_at_s": NOW + 600,
                                 "used_at_s": NOW, "token_name": "web", "token_active": True}
    return LoginCode(**{**values, **changes})  # type: ignore[arg-type]


def _session(**changes: object) -> WebSession:
    values: dict[str, object] = {"digest": "d", "token_hash": "t", "created_at_s": NOW,
                                 "expires_at_s": NOW + login.SESSION_TTL_S, "token_name": "web", "token_active": True}
    return WebSession(**{**values, **changes})  # type: ignore[arg-type]


def test_a_code_opens_a_session_once_within_its_lifetime_for_a_live_token() -> None:
    code, stored = login.new_code("token-hash", NOW)
    assert login.is_secret(code) and stored.digest == login.digest(code) != code  # only the hash is kept
    assert stored.expires_at_s - stored.created_at_s == login.CODE_TTL_S == 600
    assert login.code_refusal(_code(), NOW + 599) is None
    assert "used already" in (login.code_refusal(None, NOW) or "")  # unknown, or claimed before
    assert "expired" in (login.code_refusal(_code(), NOW + 600) or "")
    assert "revoked" in (login.code_refusal(_code(token_active=False), NOW) or "")


def test_a_session_lives_twelve_hours_and_ends_with_its_token() -> None:
    secret, session = login.new_session(_code(), NOW)
    assert login.is_secret(secret) and session.digest == login.digest(secret) != secret  # only the hash is kept
    assert session.expires_at_s - NOW == login.SESSION_TTL_S == 12 * 3600
    assert login.session_refusal(session, NOW + 3600) is None
    assert "expired" in (login.session_refusal(session, NOW + login.SESSION_TTL_S) or "")
    assert "revoked" in (login.session_refusal(_session(token_active=False), NOW) or "")
    assert login.session_refusal(None, NOW) == "you are not logged in"
    assert login.new_secret() != login.new_secret()


@pytest.mark.parametrize(("body", "code"), [
    (b'{"code": "' + b"c" * 43 + b'"}', "c" * 43),
    (b'{"code": "short"}', "short"),  # read as posted; not a code's form, so no lookup (is_secret)
    (b'{"code": 7}', ""), (b'["code"]', ""), (b"code=abc", ""), (b"", ""), (b"\xff\xfe", ""), (b"{}", ""),
    (b"[" * 1000, ""), (b"{" * 1000, ""),  # nested deeper than the parser goes
])
def test_a_login_posts_its_code_as_json(body: bytes, code: str) -> None:
    assert login.posted_code(body) == code


@pytest.mark.parametrize(("text", "secret"), [
    ("a" * 43, True), ("A-_9" * 10 + "abc", True), ("a" * 42, False), ("a" * 44, False), ("a" * 42 + "<", False),
    ("adv_" + "a" * 43, False), ("", False),  # a token of the token store never looks like a session
])
def test_what_has_the_form_of_a_code_or_session_secret(text: str, secret: bool) -> None:
    assert login.is_secret(text) is secret


@pytest.mark.parametrize(("header", "found"), [
    ("Bearer adv_x", "adv_x"), ("bearer adv_x ", "adv_x"), ("Basic dXNlcg==", None), ("Bearer", None), ("", None),
    ("Bearer  ", None),
])
def test_bearer_tokens(header: str, found: str | None) -> None:
    assert login.bearer_token(header) == found


@pytest.mark.parametrize(("address", "url"), [
    ("127.0.0.1:9464", "http://127.0.0.1:9464"), ("0.0.0.0:9464", "http://127.0.0.1:9464"),
    (":9464", "http://127.0.0.1:9464"), ("[::]:9464", "http://[::1]:9464"), ("[::1]:80", "http://[::1]:80"),
    ("host-a.example:9464", "http://host-a.example:9464"),
])
def test_the_login_url_is_built_from_the_published_address(address: str, url: str) -> None:
    assert login.base_url(address) == url
    # the code in the fragment: browsers never send it, so it is in no request line or log
    assert login.login_url(url + "/", "c" * 43) == f"{url}/login#code={'c' * 43}"


def test_loopback_listeners() -> None:
    assert login.on_loopback("127.0.0.1:9464") and login.on_loopback("127.3.0.1:1") and login.on_loopback("[::1]:1")
    assert login.on_loopback("localhost:9464")
    assert not login.on_loopback("0.0.0.0:9464") and not login.on_loopback("10.0.0.5:9464")
    assert not login.on_loopback(":9464")
