// Quick exit: one click, or Escape three times, clears this tab's traces and leaves for a
// neutral page. location.replace() swaps the history entry so "back" does not return here.
(function () {
  "use strict";
  var link = document.getElementById("quick-exit");
  if (!link) { return; }
  var target = link.getAttribute("href");
  function leave(event) {
    if (event) { event.preventDefault(); }
    try { window.sessionStorage.clear(); } catch (e) { /* storage may be blocked */ }
    document.dispatchEvent(new CustomEvent("listenline:quick-exit"));
    document.body.innerHTML = "";
    window.location.replace(target);
  }
  link.addEventListener("click", leave);
  var presses = [];
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var now = Date.now();
    presses = presses.filter(function (t) { return now - t < 1500; });
    presses.push(now);
    if (presses.length >= 3) { leave(event); }
  });
})();
