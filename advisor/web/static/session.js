// The session's secret, as the login page received it. It is kept in sessionStorage, which belongs to this origin
// (scheme, host and port) and this tab: no page of another port or site can read it, and it leaves only as
// `Authorization: Bearer` on this page's own requests. Never a cookie: a cookie belongs to a host, whatever its
// port, so any page or server on another port of the host would get it.
(function () {
  "use strict";

  const KEY = "advisor.session";

  function read() {
    try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }  // storage off: not logged in
  }

  function keep(secret) { sessionStorage.setItem(KEY, secret); }

  function forget() {
    try { sessionStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
  }

  // The headers of a request of the page: the session's, and `extra`.
  function headers(extra) {
    const secret = read();
    return Object.assign(secret ? { Authorization: `Bearer ${secret}` } : {}, extra || {});
  }

  window.AdvisorSession = { read, keep, forget, headers };
})();
