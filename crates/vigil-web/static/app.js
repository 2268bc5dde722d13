// Vigil staff dashboard: the live inbox. The server renders the rows; this
// only swaps them in when the node says the inbox changed, and rewrites the
// count line from the count each event carries (its id).
"use strict";
(function () {
  var rows = document.getElementById("inbox-rows");
  var status = document.getElementById("live-status");
  var summary = document.getElementById("inbox-summary");
  if (!rows || !window.EventSource) return;
  var es = new EventSource("/events");
  es.addEventListener("open", function () {
    if (status) status.textContent = status.dataset.connected;
  });
  es.addEventListener("error", function () {
    if (status) status.textContent = status.dataset.lost;
  });
  es.addEventListener("inbox", function (e) {
    rows.innerHTML = e.data;
    if (summary && /^\d+$/.test(e.lastEventId)) summary.textContent = unacked(+e.lastEventId);
    document.body.dataset.inboxVersion = String((+document.body.dataset.inboxVersion || 0) + 1);
  });
  // The line's wording for n, from the templates the server rendered from
  // its catalogue (data-one, data-other; "{n}" stands for the number),
  // chosen by the page language's plural rules.
  function unacked(n) {
    var d = summary.dataset;
    var form = window.Intl && Intl.PluralRules
      ? new Intl.PluralRules(document.documentElement.lang).select(n)
      : (n === 1 ? "one" : "other");
    return (form === "one" && d.one ? d.one : d.other).replace("{n}", String(n));
  }
})();
// Revoking asks first (the form says what it does); the sheet prints.
(function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
  var print = document.getElementById("print-sheet");
  if (print) print.addEventListener("click", function () { window.print(); });
})();
