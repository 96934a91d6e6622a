// The login link's page: /login#code=CODE, optionally &why=RECOMMENDATION/MOVE to open a move's panel. The code is
// in the fragment, which browsers never send: it reaches the advisor only in this page's POST, not in a request
// line or a log. The answer's session secret is kept for this origin and tab (session.js), then the page opens.
(function () {
  "use strict";

  const HINT = "For a login link, run advisor ui --data-dir DIR (DIR: the advisor's data directory) on the " +
    "advisor's machine and open the link it prints (it works once, within 10 minutes).";

  function refused(why) {
    document.title = "Login required";
    document.getElementById("login-title").textContent = "Login required";
    document.getElementById("login-why").textContent = `${why.charAt(0).toUpperCase()}${why.slice(1, 200)}.`;
    document.getElementById("login-hint").textContent = HINT;
  }

  async function login() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    history.replaceState(null, "", "/login");  // the code leaves the address bar and the history at once
    const code = fragment.get("code") || "";
    if (!code) return refused("this is not a login link (it has no code)");
    let response;
    try {
      response = await fetch("/login", {
        method: "POST", cache: "no-store", credentials: "omit", body: JSON.stringify({ code }),
        headers: { "Content-Type": "application/json", Accept: "application/json" },
      });
    } catch (error) {
      return refused(`the advisor did not answer (${error.message || error})`);
    }
    const doc = await response.json().catch(() => null);  // a refusal before the login is a short HTML page
    if (!response.ok || !doc || !doc.session) return refused((doc && doc.error) || `HTTP ${response.status}`);
    window.AdvisorSession.keep(doc.session);
    const why = fragment.get("why");
    location.replace(why ? `/#why=${encodeURIComponent(why)}` : "/");
  }

  login();
})();
