"""The web page's login rules, pure: what opens a session, what keeps it, what the cookie says."""

from __future__ import annotations

import pytest

from advisor.domain.sessions import LoginCode, WebSession
from advisor.web import login

PLAIN = login.SessionCookie(9464)
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
    assert login.is_code(code) and stored.digest == login.digest(code) != code  # only the hash is kept
    assert stored.expires_at_s - stored.created_at_s == login.CODE_TTL_S == 600
    assert login.code_refusal(_code(), NOW + 599) is None
    assert "used already" in (login.code_refusal(None, NOW) or "")  # unknown, or claimed before
    assert "expired" in (login.code_refusal(_code(), NOW + 600) or "")
    assert "revoked" in (login.code_refusal(_code(token_active=False), NOW) or "")


def test_a_session_lives_twelve_hours_and_ends_with_its_token() -> None:
    secret, session = login.new_session(_code(), NOW)
    assert PLAIN.secrets(f"advisor_session_9464={secret}") == (secret,) and session.digest == login.digest(secret)
    assert session.expires_at_s - NOW == login.SESSION_TTL_S == 12 * 3600
    assert login.session_refusal(session, NOW + 3600) is None
    assert "expired" in (login.session_refusal(session, NOW + login.SESSION_TTL_S) or "")
    assert "revoked" in (login.session_refusal(_session(token_active=False), NOW) or "")
    assert login.session_refusal(None, NOW) == "you are not logged in"
    assert login.new_secret() != login.new_secret()


def test_the_cookie_is_httponly_strict_named_after_the_port_and_not_secure_on_plain_http() -> None:
    cookie = PLAIN.set("s" * 43, login.SESSION_TTL_S)
    attributes = [a.strip() for a in cookie.split(";")]
    assert attributes[0] == "advisor_session_9464=" + "s" * 43
    assert {"Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} <= set(attributes)
    assert "Secure" not in attributes
    assert "Max-Age=0" in PLAIN.cleared() and PLAIN.cleared().startswith("advisor_session_9464=;")
    # another listener of the host, on another port: its cookie is not ours, nor ours its
    other = login.SessionCookie(9465)
    assert other.secrets(attributes[0]) == () and PLAIN.secrets(other.set("t" * 43, 1).split(";")[0]) == ()


def test_over_tls_the_cookie_is_secure_and_host_only() -> None:
    secure = login.SessionCookie(9464, tls=True)
    attributes = [a.strip() for a in secure.set("s" * 43, login.SESSION_TTL_S).split(";")]
    assert attributes[0] == "__Host-advisor_session_9464=" + "s" * 43 and "Secure" in attributes
    assert "Path=/" in attributes and not any(a.startswith("Domain") for a in attributes)
    assert secure.secrets(attributes[0]) == ("s" * 43,)
    assert PLAIN.secrets(attributes[0]) == ()  # each listener reads only its own kind
    assert secure.secrets("advisor_session_9464=" + "s" * 43) == ()
    assert secure.cleared().startswith("__Host-advisor_session_9464=;") and "Secure" in secure.cleared()


@pytest.mark.parametrize(("header", "found"), [
    ("advisor_session_9464=" + "a" * 43, ("a" * 43,)),
    ("theme=dark; advisor_session_9464=" + "b" * 43 + "; x=1", ("b" * 43,)),
    ("advisor_session_9464=" + "a" * 42, ()),  # not one of ours
    ("advisor_session_9464=" + "a" * 42 + "<", ()),
    ("advisor_session_9464", ()),
    ("", ()),
    ("other=" + "a" * 43, ()),
    ("advisor_session=" + "a" * 43, ()),  # the name before ports were in it
    # a cookie of our name set elsewhere with a longer path comes first: the real one is still read
    ("advisor_session_9464=" + "x" * 43 + "; advisor_session_9464=" + "a" * 43, ("x" * 43, "a" * 43)),
    ("; ".join(["advisor_session_9464=" + "x" * 43] * 9), ("x" * 43,) * login.SAME_NAME_READ),
])
def test_only_well_formed_session_cookies_of_our_name_are_read(header: str, found: tuple[str, ...]) -> None:
    assert PLAIN.secrets(header) == found


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
    assert login.login_url(url + "/", "c" * 43) == f"{url}/login?code={'c' * 43}"


def test_loopback_listeners() -> None:
    assert login.on_loopback("127.0.0.1:9464") and login.on_loopback("127.3.0.1:1") and login.on_loopback("[::1]:1")
    assert login.on_loopback("localhost:9464")
    assert not login.on_loopback("0.0.0.0:9464") and not login.on_loopback("10.0.0.5:9464")
    assert not login.on_loopback(":9464")
