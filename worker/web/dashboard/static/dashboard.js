// The dashboard's only script (served from this package). Pages work without it; it adds:
// - in-place refresh of a block marked data-refresh (a campaign's live progress), every 3 s;
// - a confirmation before a form marked data-confirm is posted (cancelling a campaign).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  function refresh(block) {
    var url = block.getAttribute("data-refresh");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("[data-refresh]");
        if (fresh) { block.replaceWith(fresh); schedule(fresh); }
      })
      .catch(function () { schedule(block); });
  }
  function schedule(block) { window.setTimeout(function () { refresh(block); }, 3000); }
  document.querySelectorAll("[data-refresh]").forEach(schedule);
});
