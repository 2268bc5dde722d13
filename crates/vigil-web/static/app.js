// Vigil staff dashboard: the live inbox. The server renders the rows; this
// only swaps them in when the node says the inbox changed.
"use strict";
(function () {
  var rows = document.getElementById("inbox-rows");
  var status = document.getElementById("live-status");
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
    document.body.dataset.inboxVersion = String((+document.body.dataset.inboxVersion || 0) + 1);
  });
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
