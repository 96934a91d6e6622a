"""Who may address the listener, pure: the `Host` a request names, and the page a browser sent it from.

- DNS rebinding: a page of evil.example whose name is made to resolve to 127.0.0.1 reaches the listener with
  `Host: evil.example`. Only an IP address (never rebound: the browser's origin is that address), `localhost`,
  this machine's names and the configured listen host are answered; anything else gets 421.
- Another port of this host is another origin. The session's secret is in the page's own origin's storage, out
  of that page's reach, and travels in a header that page cannot make the browser add; still, as a second wall,
  browsers say where a request comes from (`Sec-Fetch-Site`, and `Origin` on anything but a plain GET): a request
  from another origin is refused, but for a top-level navigation to the page or the login page (which reads
  nothing the other page could see). A client that is no
  browser sends neither header, and holds whatever it sends itself.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

SAME_ORIGIN = ("", "same-origin", "none")  # none: the user typed it, or opened a bookmark or a link from outside
NAVIGABLE = ("/", "/login")


def listener_names(listen_host: str) -> frozenset[str]:
    """The host names the listener answers to besides IP addresses."""
    names: Iterable[str] = ("localhost", listen_host, socket.gethostname(), socket.getfqdn())
    return frozenset(n.lower().rstrip(".") for n in names if n and not _is_ip(n.strip("[]")))


def host_name(header: str) -> str:
    """The name of a Host header, without its port and IPv6 brackets, lower case."""
    text = header.strip().lower()
    name = text[1:text.find("]")] if text.startswith("[") and "]" in text else text.partition(":")[0]
    return name.rstrip(".")


def host_allowed(header: str, names: frozenset[str]) -> bool:
    if not header:
        return True  # HTTP/1.0 without Host is no browser (cheroot refuses HTTP/1.1 without one)
    name = host_name(header)
    return _is_ip(name) or name in names


def foreign(*, origin: str, fetch_site: str, own_origin: str) -> bool:
    """Whether a browser sent this request from a page of another origin (another port of this host included)."""
    return bool(origin and origin.lower() != own_origin.lower()) or fetch_site.lower() not in SAME_ORIGIN


def navigation_allowed(*, path: str, method: str, fetch_mode: str) -> bool:
    """A top-level GET of the page or a login link: shown in the browser's window, never to the page that led
    there (and framing is refused by the security headers)."""
    return path in NAVIGABLE and method == "GET" and fetch_mode.lower() == "navigate"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
