// Large text and high contrast: display preferences only, so localStorage is fine here
// (nothing about a conversation is ever kept there).
(function () {
  "use strict";
  var prefs = [["pref-large", "large-text"], ["pref-contrast", "high-contrast"]];
  prefs.forEach(function (pair) {
    var button = document.getElementById(pair[0]);
    var key = "ll.display." + pair[1];
    var on = false;
    try { on = window.localStorage.getItem(key) === "1"; } catch (e) { /* blocked */ }
    function apply() {
      document.documentElement.classList.toggle(pair[1], on);
      if (button) { button.setAttribute("aria-pressed", on ? "true" : "false"); }
    }
    apply();
    if (!button) { return; }
    button.addEventListener("click", function () {
      on = !on;
      try { window.localStorage.setItem(key, on ? "1" : "0"); } catch (e) { /* blocked */ }
      apply();
    });
  });
})();
