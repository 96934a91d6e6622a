"""The web page: served on the metrics listener beside /metrics, read only, behind the API's tokens.

server.py (the listener: cheroot, its deadlines, TLS), handler.py (routes, who gets in, headers), origin.py (the
Host and the requesting page's origin, checked), throttle.py (failed logins per client), views.py (the JSON, built
by the API's converters), params.py (query parameters, checked), login.py (the login and session rules, pure),
pages.py (the page and its static files); static/ holds the page itself and the pinned plotting library.
"""
