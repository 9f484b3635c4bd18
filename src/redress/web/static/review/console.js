// Redress review console: reveal on click, countdowns, keyboard shortcuts.
// Hand-written, no dependencies; the pages work without it (plain forms).
(function () {
  "use strict";

  function countdowns() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.dataset.deadline) - now) / 1000;
      if (left <= 0) {
        el.textContent = "BREACHED " + Math.floor(-left / 3600) + " h ago";
        var row = el.closest("tr, .deadline");
        if (row) row.classList.add("breach");
      } else {
        el.textContent = Math.floor(left / 3600) + " h " + Math.floor((left % 3600) / 60) + " min left";
      }
    });
  }

  function reveal(event) {
    var shield = document.getElementById("shield");
    if (!shield || shield.classList.contains("revealed")) return;
    if (event) event.preventDefault();
    var body = new URLSearchParams({ csrf_token: shield.dataset.csrf });
    fetch("/review/items/" + shield.dataset.item + "/reveal", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": shield.dataset.csrf },
      body: body
    }).then(function (response) { return response.json(); }).then(function (answer) {
      if (!answer.ok) return;
      shield.classList.add("revealed");
      var img = document.getElementById("media");
      if (img && img.tagName === "IMG") img.src = img.src.split("?")[0] + "?revealed=" + Date.now();
      if (img && img.tagName === "VIDEO") { img.muted = true; img.src = img.dataset.src; }
      var counter = document.getElementById("exposure");
      if (counter) {
        counter.textContent = "seen today " + answer.today + "/" + answer.soft_limit;
        if (answer.over) counter.classList.add("over");
      }
      var button = document.getElementById("reveal");
      if (button) button.textContent = "Revealed";
    });
  }

  function decisionForm() {
    var form = document.getElementById("decide");
    if (!form) return;
    function sync() {
      var picked = form.querySelector("input[name=outcome]:checked");
      form.dataset.outcome = picked ? picked.value : "";
      form.querySelectorAll("optgroup[data-outcome]").forEach(function (group) {
        var show = !picked || group.dataset.outcome === picked.value;
        group.hidden = !show;
        group.disabled = !show;
      });
    }
    form.addEventListener("change", sync);
    sync();
    // Double submits: the first click disables the button.
    form.addEventListener("submit", function () {
      var button = document.getElementById("submit-decision");
      if (button) button.disabled = true;
    });
  }

  function shortcuts(event) {
    var tag = (event.target.tagName || "").toLowerCase();
    var typing = tag === "input" && event.target.type === "text" || tag === "textarea" || tag === "select";
    var form = document.getElementById("decide");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    var outcomes = { c: "confirmed", n: "not_violation", e: "escalated", i: "needs_info" };
    if (form && outcomes[event.key]) {
      var radio = document.getElementById("o-" + outcomes[event.key]);
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      var reason = document.getElementById("reason");
      if (reason) reason.focus();
    } else if (event.key === "v") {
      reveal(null);
    } else if (event.key === "j" || event.key === "k") {
      var rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr[data-item]"));
      if (!rows.length) return;
      var at = rows.findIndex(function (r) { return r.classList.contains("selected"); });
      if (at >= 0) rows[at].classList.remove("selected");
      at = Math.max(0, Math.min(rows.length - 1, at + (event.key === "j" ? 1 : -1)));
      rows[at].classList.add("selected");
    } else if (event.key === "o") {
      var selected = document.querySelector("table.queue tr.selected a.open") || document.querySelector("table.queue a.open");
      if (selected) selected.click();
    } else if (event.key === "x") {
      var box = document.querySelector("table.queue tr.selected input[type=checkbox]");
      if (box) box.checked = !box.checked;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    countdowns();
    setInterval(countdowns, 30000);
    var form = document.getElementById("reveal-form");
    if (form) form.addEventListener("submit", reveal);
    var shield = document.getElementById("shield");
    if (shield) shield.addEventListener("click", reveal);
    decisionForm();
    document.addEventListener("keydown", shortcuts);
  });
})();
