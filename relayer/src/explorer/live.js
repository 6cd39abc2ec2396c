// Live updates: while the page's <main> carries data-live, fetch the page again every few
// seconds and swap in the new <main> (keeping the focused element's id and the scroll position).
(function () {
  "use strict";
  var PERIOD_MS = 3000;
  function main() { return document.getElementById("main"); }
  function refresh() {
    var current = main();
    if (!current || !current.hasAttribute("data-live")) return;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null) { schedule(); return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        if (!fresh) { schedule(); return; }
        if (fresh.innerHTML !== current.innerHTML) {
          var focused = document.activeElement && document.activeElement.id;
          current.innerHTML = fresh.innerHTML;
          if (focused) { var again = document.getElementById(focused); if (again) again.focus(); }
        }
        if (fresh.hasAttribute("data-live")) schedule(); else current.removeAttribute("data-live");
      })
      .catch(schedule);
  }
  function schedule() { window.setTimeout(refresh, PERIOD_MS); }
  document.addEventListener("DOMContentLoaded", schedule);
})();
